/**
 * The Action's entry point (action.yml runs `node dist/action/main.js`). `run` is in its own module so tools
 * such as @github/local-action can import and call it.
 */
import { run } from './run.js';

await run();
// Pool threads and probes of the stopped runner must not keep a finished step alive; stdout and stderr are
// pipes or files here, written synchronously, so nothing printed is lost.
process.exit(process.exitCode ?? 0);
