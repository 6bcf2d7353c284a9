/**
 * Headless entry of the engine (Node + Dawn): `npm run cli -- <command>`.
 *   info --model <path>   what the model is: architecture, canonical config, parameters, tensors
 *   gpu                   the adapter found, and the GPU self-check (one kernel vs its CPU reference)
 * Errors about a model file print one line, `error: <file>: <problem>`, and exit with status 2.
 */
import { ModelFileError } from './formats/errors.js';
import { inspectModel, summarizeInspection } from './formats/inspect.js';
import { describeAdapter } from './gpu/adapter.js';
import { openGpu } from './gpu/context.js';
import { runResidualRmsNormCheck } from './kernels/self-test.js';
import { findNodeGpu } from './node/dawn.js';
import { folderModelFiles } from './node/folder.js';

const USAGE = `usage: mamba-studio-cli <command>

commands:
  info --model <path>   print what the model is (JSON): architecture, config, parameters, tensors, warnings
  gpu                   find a WebGPU adapter, print it, and check one kernel against its CPU reference
`;

class UsageError extends Error {}

/** `--name value` options after the command; unknown options are usage errors. */
function options(args: string[], known: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const name = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !known.includes(name)) throw new UsageError(`unknown argument "${arg}"`);
    const value = args[i + 1];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
    out.set(name, value);
    i++;
  }
  return out;
}

async function infoCommand(args: string[]): Promise<number> {
  const model = options(args, ['model']).get('model');
  if (!model) throw new UsageError('info needs --model <path>');
  const files = await folderModelFiles(model);
  try {
    const inspection = await inspectModel(files);
    process.stdout.write(`${JSON.stringify(summarizeInspection(inspection), null, 2)}\n`);
    return 0;
  } finally {
    await files.close();
  }
}

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
  const [command, ...rest] = argv;
  switch (command) {
    case 'info':
      return infoCommand(rest);
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
    // One line, no stack trace: the file and what is wrong with it (or what was asked wrongly).
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message.split('\n')[0]}\n`);
    if (error instanceof UsageError) process.stderr.write(USAGE);
    else if (!(error instanceof ModelFileError)) process.stderr.write('(not a model-file error: please report it)\n');
    process.exit(2);
  },
);
