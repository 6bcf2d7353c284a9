"""Runs the studio's CLI on a machine without Node: unpacks the node binary and Dawn's addon
(xz, via Python's lzma) into /tmp/devbench and runs `node cli.js <args>` there. Made by
tooling/bench-bundle.sh, which copies this file to .devbench/run.py."""
import lzma, os, shutil, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = '/tmp/devbench'
os.makedirs(f'{root}/node_modules/webgpu/dist/linux-x64', exist_ok=True)
def unxz(src, dst):
    if not os.path.exists(dst):
        with lzma.open(src) as f, open(dst, 'wb') as out:
            shutil.copyfileobj(f, out)
        os.chmod(dst, 0o755)
unxz(f'{here}/node.xz', f'{root}/node')
unxz(f'{here}/dawn.node.xz', f'{root}/node_modules/webgpu/dist/linux-x64/dawn.node')
for name in ('index.js', 'package.json'):
    shutil.copy(f'{here}/webgpu/{name}', f'{root}/node_modules/webgpu/{name}')
os.makedirs(f'{root}/dist/cli', exist_ok=True)
# The CLI: $DEVBENCH_CLI (another build's cli-old.js.xz, as tooling/bench-ab.sh uses), else cli.js.xz.
cli = os.environ.get('DEVBENCH_CLI', f'{here}/cli.js.xz')
with lzma.open(cli) as f, open(f'{root}/dist/cli/cli.js', 'wb') as out:
    shutil.copyfileobj(f, out)
# Paths given after --model / --out are relative to where this was started, not to /tmp/devbench.
args = sys.argv[1:]
for i, a in enumerate(args[:-1]):
    if a in ('--model', '--out') and not os.path.isabs(args[i + 1]):
        args[i + 1] = os.path.abspath(args[i + 1])
sys.exit(subprocess.call([f'{root}/node', f'{root}/dist/cli/cli.js', *args], cwd=root))
