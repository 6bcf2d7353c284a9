/**
 * Headless entry of the engine (Node + Dawn): `npm run cli -- <command>`.
 *   gpu   prints the adapter found and runs the GPU self-check (one kernel vs its CPU reference)
 * Later issues add `info`, `run`, `trace` and `bench`.
 */
import { describeAdapter } from './gpu/adapter.js';
import { openGpu } from './gpu/context.js';
import { runResidualRmsNormCheck } from './kernels/self-test.js';
import { findNodeGpu } from './node/dawn.js';

const USAGE = `usage: mamba-studio-cli <command>

commands:
  gpu     find a WebGPU adapter, print it, and check one kernel against its CPU reference
`;

async function gpuCommand(): Promise<number> {
  const { gpu, via } = await findNodeGpu();
  const ctx = await openGpu(gpu);
  const check = await runResidualRmsNormCheck(ctx, 37, 301);
  process.stdout.write(
    `${JSON.stringify({ adapter: ctx.adapter, description: describeAdapter(ctx.adapter), via, selfTest: check }, null, 2)}\n`,
  );
  ctx.device.destroy();
  return check.passed ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'gpu':
      return gpuCommand();
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`error: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
