/** An MCP client for tests that checks what the server answers, not only that it answers. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/**
 * A connected SDK client that has listed the tools: from then on it checks every tool result against the output
 * schema the server published (and rejects the call when one does not fit). The server does not check its own
 * results (adapters/mcp/tools/tool.ts), so this is where a tool that drifts from its schema is caught.
 */
export async function connectedClient(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'delegate-test', version: '0.0.0' });
  await client.connect(transport);
  await client.listTools();
  return client;
}
