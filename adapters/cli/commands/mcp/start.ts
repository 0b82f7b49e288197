import { Command } from 'clipanion';
import type { DelegateContext } from '../../context.js';

/** `delegate mcp start`: serve the MCP tools on stdio until the client closes stdin. */
export class McpStartCommand extends Command<DelegateContext> {
  static override paths = [['mcp', 'start']];
  static override usage = Command.Usage({
    description: 'Serve the MCP tools (DelegateTask, TaskStatus, …) on stdio for Claude Code or any MCP client',
    details:
      'Speaks MCP on stdin/stdout (logs go to stderr) until the client closes stdin. Tasks are queued in the data dir and run by a runner node, started in the background when none is up (unless DELEGATE_AUTOSTART=0), so they keep running after the client exits. Tasks run in the directory the server was started in unless they say otherwise. A line over DELEGATE_MCP_MAX_MESSAGE_BYTES (16 MiB), or one that is not a JSON-RPC request, gets a JSON-RPC error and the server reads on.',
    examples: [
      ['Serve (what .mcp.json runs)', '$0 mcp start'],
      ['Queue only; run tasks with your own `delegate serve`', 'DELEGATE_AUTOSTART=0 $0 mcp start'],
    ],
  });

  override async execute(): Promise<number> {
    // Loaded here, not with the CLI: the MCP SDK costs every other command ~200 ms of start-up.
    const { runMcpStart } = await import('../../../mcp/start.js');
    return runMcpStart(this.context);
  }
}
