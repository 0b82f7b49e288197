/**
 * The OpenAI Codex CLI agent: `codex exec --json … -` with the prompt on stdin, and a parser for its JSONL event
 * stream (`thread.started`, `turn.started`, `item.*`, `turn.completed` / `turn.failed`, `error`).
 *
 * How the engine's task settings map onto codex:
 * - Sessions. codex picks its own session (thread) ids, so a new run ignores the engine's pre-assigned id and
 *   the id is recorded from `thread.started`. An interrupted run continues its thread with `codex exec resume
 *   <id>`. codex cannot fork a session, so a resumed task (`forkFromSessionId`) also resumes the old thread:
 *   its history goes on in place rather than in a copy.
 * - Permissions. `codex exec` never asks for approval, so the task's permission mode picks the sandbox:
 *   bypassPermissions → `--dangerously-bypass-approvals-and-sandbox` (no sandbox, as claude with
 *   bypassPermissions asks nothing); acceptEdits → `--sandbox workspace-write` (edits in the working directory,
 *   commands sandboxed to it); default, dontAsk and plan → `--sandbox read-only` (claude in a background run
 *   makes no edit it was not allowed up front, so these change nothing). claude's per-tool lists
 *   (allowedTools, disallowedTools) and budget (maxBudgetUsd) have no codex equivalent: a task with them is
 *   refused when it is submitted, rather than run with less restriction than it asked for.
 * - Usage. `turn.completed.usage` gives input, cached input and output tokens; codex counts cached tokens
 *   inside its input, the engine apart from it (as the Anthropic API does), so input is reported less cached.
 *   codex reports no cost, so costUsd stays undefined; nor does it name the model or count turns.
 */
import type { Agent, AgentCommand, AgentOutputParser, AgentResult, AgentRunSpec, AgentTaskSettings, TokenCounts } from '../../engine/agent.js';
import { UsageError } from '../../engine/errors.js';
import { findOnPath } from './claude.js';
import { missingBinaryExplainer } from './spawn-errors.js';
import { isObject, str, type Json } from './json-fields.js';

/** How to fix a missing `codex` binary; appended to this agent's spawn errors. */
const CODEX_INSTALL_HINT = 'install the Codex CLI (npm i -g @openai/codex) or set DELEGATE_CODEX_BIN';

/** Longest command or query kept on a `[tool] …` line. */
const TOOL_SUMMARY_MAX = 120;

/**
 * codex reports a dropped model stream it is retrying as a top-level `error` event ("Reconnecting... 2/5 …")
 * and may still complete the turn, so such an event alone is no failure.
 */
const RECONNECTING_RE = /^Reconnecting\.\.\. \d+\/\d+/;

/** Environment codex reads its credentials and home from (`CODEX_HOME`, `CODEX_API_KEY`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`, …). */
const CODEX_ENV_PREFIXES = ['CODEX_', 'OPENAI_'];

/** The codex binary: `DELEGATE_CODEX_BIN`, else `codex` on PATH, else bare `codex` (spawn fails with ENOENT). */
export function resolveCodexBin(env: NodeJS.ProcessEnv): string {
  const override = env.DELEGATE_CODEX_BIN;
  if (override) return override;
  return findOnPath('codex', env.PATH) ?? 'codex';
}

/** The sandbox arguments for a task's permission mode (see the module comment for why each). */
export function codexPermissionArgs(permissionMode: string): string[] {
  switch (permissionMode) {
    case 'bypassPermissions':
      return ['--dangerously-bypass-approvals-and-sandbox'];
    case 'acceptEdits':
      return ['--sandbox', 'workspace-write'];
    case 'default':
    case 'dontAsk':
    case 'plan':
      return ['--sandbox', 'read-only'];
    default:
      throw new UsageError('invalid_input', `permissionMode '${permissionMode}' for codex: expected bypassPermissions, acceptEdits, default, dontAsk or plan`);
  }
}

/** Refuse claude-only settings codex cannot honour, rather than run less restricted than the task asked. */
export function checkCodexTask(settings: AgentTaskSettings): void {
  if (settings.allowedTools.length > 0 || settings.disallowedTools.length > 0) {
    throw new UsageError('invalid_input', 'allowedTools/disallowedTools: claude options that codex has no equivalent of; use permissionMode (plan runs codex in a read-only sandbox)');
  }
  if (settings.maxBudgetUsd !== undefined) {
    throw new UsageError('invalid_input', 'maxBudgetUsd: codex reports no cost, so a budget cannot be enforced; leave it out for codex tasks');
  }
  codexPermissionArgs(settings.permissionMode);
}

/**
 * The CLI arguments for one run (without the binary). Every option goes before `resume`: the exec-level options
 * apply to the resumed session too, and not every codex version accepts them after the subcommand.
 */
export function buildCodexArgs(spec: AgentRunSpec): string[] {
  // Checked again here for tasks written before (or around) the submit-time check.
  checkCodexTask(spec);
  // --skip-git-repo-check: the task names its working directory on purpose; codex's check guards interactive use.
  const args = ['exec', '--json', ...codexPermissionArgs(spec.permissionMode), '--skip-git-repo-check'];
  if (spec.model) args.push('--model', spec.model);
  const thread = spec.resumeSessionId ?? spec.forkFromSessionId;
  if (thread) args.push('resume', thread);
  // `-`: the prompt comes from stdin, so it never shows in a process list.
  args.push('-');
  return args;
}

/** The variables of `env` codex needs to reach its API (the launcher's safelist is claude's). */
function codexEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && CODEX_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))) picked[name] = value;
  }
  return picked;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

function textLines(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== '');
}

function oneLine(text: string, max = TOOL_SUMMARY_MAX): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A turn's usage as the engine counts tokens: cached input apart from plain input. */
export function tokensOfCodexUsage(usage: unknown): TokenCounts | undefined {
  if (!isObject(usage)) return undefined;
  const input = count(usage.input_tokens);
  const cached = Math.min(count(usage.cached_input_tokens), input);
  return { input: input - cached, output: count(usage.output_tokens), cacheCreation: 0, cacheRead: cached };
}

/** The `[tool] …` line that announces an item, or undefined for items that are not tool calls. */
function toolLine(item: Json): string | undefined {
  switch (item.type) {
    case 'command_execution':
      return `[tool] command ${oneLine(str(item.command) ?? '')}`;
    case 'file_change': {
      const changes = Array.isArray(item.changes) ? item.changes.filter(isObject) : [];
      const list = changes.map((change) => `${str(change.kind) ?? 'update'} ${str(change.path) ?? '?'}`).join(', ');
      return `[tool] file_change ${oneLine(list)}`;
    }
    case 'mcp_tool_call':
      return `[tool] mcp ${str(item.server) ?? '?'}.${str(item.tool) ?? '?'}`;
    case 'web_search':
      return `[tool] web_search ${oneLine(str(item.query) ?? '')}`;
    default:
      return undefined;
  }
}

/**
 * A parser for `codex exec --json` lines. Readable lines: agent messages split into lines, one `[tool] …` line
 * per command, file change, MCP call or web search (when it starts, or when it completes if its start was not
 * seen), a line for a command that failed, `[error] …` for errors, and non-JSON lines as they are. Reasoning,
 * to-do lists and plans stay out of the text log (they are in the raw log).
 *
 * The result: `turn.completed` / `turn.failed` are final; a top-level `error` event is final only if no turn
 * completes after it (codex also reports retries that way). The result text is the last agent message, or the
 * error of a failed run.
 */
export function createCodexJsonParser(): AgentOutputParser {
  let threadId: string | undefined;
  let turnOutcome: 'none' | 'completed' | 'failed' = 'none';
  let turnError: string | undefined;
  let streamError: string | undefined;
  let lastMessage: string | undefined;
  let tokens: TokenCounts | undefined;
  const announced = new Set<string>();

  function onItem(item: Json, phase: 'started' | 'updated' | 'completed'): string[] {
    const id = str(item.id) ?? '';
    if (item.type === 'agent_message') {
      if (phase !== 'completed') return [];
      const text = str(item.text) ?? '';
      lastMessage = text;
      return textLines(text);
    }
    if (item.type === 'error') return phase === 'completed' ? [`[error] ${oneLine(str(item.message) ?? 'error', 300)}`] : [];
    const line = toolLine(item);
    if (line === undefined || phase === 'updated') return [];
    const out: string[] = [];
    if (!announced.has(id)) {
      announced.add(id);
      out.push(line);
    }
    if (phase === 'completed' && item.type === 'command_execution') {
      const exitCode = typeof item.exit_code === 'number' ? item.exit_code : undefined;
      if (item.status === 'declined') out.push('[tool] command declined');
      else if (item.status === 'failed' || (exitCode !== undefined && exitCode !== 0)) out.push(`[tool] command failed${exitCode !== undefined ? ` (exit ${exitCode})` : ''}`);
    }
    return out;
  }

  return {
    pushLine(line: string): string[] {
      const trimmed = line.trim();
      if (trimmed === '') return [];
      let event: unknown;
      try {
        event = JSON.parse(trimmed);
      } catch {
        return [line];
      }
      if (!isObject(event)) return [line];
      switch (event.type) {
        case 'thread.started':
          threadId = str(event.thread_id) ?? threadId;
          return [];
        case 'turn.started':
          return [];
        case 'turn.completed': {
          turnOutcome = 'completed';
          turnError = undefined;
          const used = tokensOfCodexUsage(event.usage);
          // Summed: one exec runs one turn today, but nothing in the stream promises that.
          if (used) {
            tokens = tokens
              ? { input: tokens.input + used.input, output: tokens.output + used.output, cacheCreation: 0, cacheRead: tokens.cacheRead + used.cacheRead }
              : used;
          }
          return [];
        }
        case 'turn.failed': {
          turnOutcome = 'failed';
          const error = isObject(event.error) ? str(event.error.message) : undefined;
          turnError = error ?? 'turn failed';
          return [`[error] ${oneLine(turnError, 300)}`];
        }
        case 'error': {
          const message = str(event.message) ?? 'error';
          if (!RECONNECTING_RE.test(message)) streamError = message;
          return [`[error] ${oneLine(message, 300)}`];
        }
        case 'item.started':
        case 'item.updated':
        case 'item.completed':
          return isObject(event.item) ? onItem(event.item, event.type.slice('item.'.length) as 'started' | 'updated' | 'completed') : [];
        default:
          return [];
      }
    },
    result(): AgentResult {
      // A fatal stream error ends the run without a turn outcome; a completed turn after an error wins.
      const failed = turnOutcome === 'failed' || (turnOutcome === 'none' && streamError !== undefined);
      const resultText = turnOutcome === 'failed' ? turnError : failed ? streamError : lastMessage;
      return {
        sawResult: turnOutcome !== 'none' || streamError !== undefined,
        isError: failed,
        ...(threadId !== undefined ? { sessionId: threadId } : {}),
        ...(tokens ? { tokens: { ...tokens } } : {}),
        ...(resultText !== undefined ? { resultText } : {}),
      };
    },
  };
}

/** The OpenAI Codex CLI agent (`agent: "codex"`). */
export const codexAgent: Agent = {
  name: 'codex',
  checkTask: checkCodexTask,
  buildCommand(spec: AgentRunSpec, env: NodeJS.ProcessEnv): AgentCommand {
    return { file: resolveCodexBin(env), args: buildCodexArgs(spec), stdin: spec.prompt, env: codexEnv(env) };
  },
  createParser: createCodexJsonParser,
  describeSpawnError: missingBinaryExplainer('codex', CODEX_INSTALL_HINT),
};
