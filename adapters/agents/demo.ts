/**
 * The built-in demo agent: a tiny Node script that reads the prompt, says plainly that it is not Claude, echoes
 * the prompt over a second or two and ends with a stream-json result costing 0. It lets `delegate demo` and
 * tests show the whole pipeline on a machine without Claude Code, and never runs the prompt as a command.
 */
import { randomUUID } from 'node:crypto';
import type { Agent, AgentCommand, AgentRunSpec } from '../../engine/agent.js';
import { createStreamJsonParser } from './claude.js';

// Inline (`node -e`) rather than a file next to this module so it works the same from source and from dist/.
const DEMO_SCRIPT = String.raw`
const sessionId = process.env.DELEGATE_DEMO_SESSION_ID;
const started = Date.now();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const say = (text) => out({ type: 'assistant', message: { role: 'assistant', model: 'demo',
  content: [{ type: 'text', text }] }, session_id: sessionId });
let prompt = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { prompt += c; });
process.stdin.on('end', async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  out({ type: 'system', subtype: 'init', session_id: sessionId, cwd: process.cwd(), model: 'demo',
    permissionMode: 'default', tools: [] });
  say('demo agent: this is not Claude, only a built-in demo that echoes the prompt');
  await sleep(400);
  say('demo agent: install Claude Code (npm i -g @anthropic-ai/claude-code) to run real tasks');
  await sleep(400);
  const lines = prompt.trim().split(/\r?\n/);
  for (const line of lines.slice(0, 20)) say('prompt: ' + line);
  await sleep(400);
  out({ type: 'result', subtype: 'success', is_error: false, duration_ms: Date.now() - started,
    num_turns: 1, result: 'demo agent echoed ' + lines.length + ' prompt line(s); nothing was done',
    session_id: sessionId, total_cost_usd: 0, usage: { input_tokens: 0, output_tokens: 0 } });
});
`;

/** The demo agent (`agent: "demo"`); its output says it is not Claude. */
export const demoAgent: Agent = {
  name: 'demo',
  buildCommand(spec: AgentRunSpec): AgentCommand {
    const sessionId = spec.resumeSessionId ?? spec.sessionId ?? randomUUID();
    return {
      file: process.execPath,
      args: ['-e', DEMO_SCRIPT],
      stdin: spec.prompt,
      env: { DELEGATE_DEMO_SESSION_ID: sessionId },
    };
  },
  createParser: createStreamJsonParser,
};
