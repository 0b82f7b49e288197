/**
 * The Claude Code CLI agent: `claude -p --output-format stream-json --verbose …` with the prompt on stdin, and a
 * parser for its stream-json output.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Agent, AgentCommand, AgentOutputParser, AgentResult, AgentRunSpec, TokenCounts, UsageLimitNotice } from '../../engine/agent.js';
import { isUsageLimitMessage, parseRateLimitEvent, parseUsageLimitText } from './usage-limit.js';
import { missingBinaryExplainer } from './spawn-errors.js';
import { isObject, str, num, type Json } from './json-fields.js';

/** How to fix a missing `claude` binary; appended to this agent's spawn errors. */
const CLAUDE_INSTALL_HINT = 'install Claude Code (npm i -g @anthropic-ai/claude-code) or set DELEGATE_CLAUDE_BIN';

/** Longest tool input summary kept on a `[tool] …` line. */
const TOOL_INPUT_MAX = 120;

/** The result subtype of a run stopped by `--max-budget-usd`. */
const BUDGET_SUBTYPE = 'error_max_budget_usd';

/**
 * The absolute path of an executable `name` on `pathVar`, or undefined. Resolved here rather than left to spawn
 * so the engine can log which binary ran and a missing one is reported before the run, not as a vague ENOENT.
 */
export function findOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** The claude binary: `DELEGATE_CLAUDE_BIN`, else `claude` on PATH, else bare `claude` (spawn fails with ENOENT). */
export function resolveClaudeBin(env: NodeJS.ProcessEnv): string {
  const override = env.DELEGATE_CLAUDE_BIN;
  if (override) return override;
  return findOnPath('claude', env.PATH) ?? 'claude';
}

/** The CLI arguments for one run (without the binary). Exported for tests and for `delegate` dry runs. */
export function buildClaudeArgs(spec: AgentRunSpec): string[] {
  const args = ['-p', '--output-format', 'stream-json', '--verbose'];
  // claude accepts --session-id with --resume only together with --fork-session.
  if (spec.resumeSessionId) args.push('--resume', spec.resumeSessionId);
  else if (spec.forkFromSessionId) {
    args.push('--resume', spec.forkFromSessionId, '--fork-session');
    if (spec.sessionId) args.push('--session-id', spec.sessionId);
  } else if (spec.sessionId) args.push('--session-id', spec.sessionId);
  if (spec.model) args.push('--model', spec.model);
  if (spec.permissionMode) args.push('--permission-mode', spec.permissionMode);
  // Variadic in the CLI: values run until the next flag, and the prompt is on stdin, so nothing else is eaten.
  if (spec.allowedTools.length > 0) args.push('--allowedTools', ...spec.allowedTools);
  if (spec.disallowedTools.length > 0) args.push('--disallowedTools', ...spec.disallowedTools);
  if (spec.maxBudgetUsd !== undefined) args.push('--max-budget-usd', String(spec.maxBudgetUsd));
  return args;
}

function textLines(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== '');
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A short, single-line view of a tool call's input: the field a person would look at first. */
function summarizeToolInput(input: unknown): string {
  if (!isObject(input)) return '';
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'query', 'description', 'prompt']) {
    const value = str(input[key]);
    if (value) return oneLine(value, TOOL_INPUT_MAX);
  }
  const json = JSON.stringify(input);
  return json === '{}' ? '' : oneLine(json, TOOL_INPUT_MAX);
}

/** The four token counts of a result's `usage` object; undefined when it has none of them. */
export function tokensOfUsage(usage: unknown): TokenCounts | undefined {
  if (!isObject(usage)) return undefined;
  const counts = [usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens].map(num);
  if (counts.every((count) => count === undefined)) return undefined;
  const [input, output, cacheCreation, cacheRead] = counts.map((count) => count ?? 0) as [number, number, number, number];
  return { input, output, cacheCreation, cacheRead };
}

/**
 * The tokens summed over a result's `modelUsage` (per model, camelCase), for results without `usage`; and the
 * model that cost the most, for runs whose init event named none.
 */
function ofModelUsage(modelUsage: unknown): { tokens?: TokenCounts; model?: string } {
  if (!isObject(modelUsage)) return {};
  let tokens: TokenCounts | undefined;
  let model: string | undefined;
  let topCost = -1;
  for (const [name, entry] of Object.entries(modelUsage)) {
    if (!isObject(entry)) continue;
    tokens ??= { input: 0, output: 0, cacheCreation: 0, cacheRead: 0 };
    tokens.input += num(entry.inputTokens) ?? 0;
    tokens.output += num(entry.outputTokens) ?? 0;
    tokens.cacheCreation += num(entry.cacheCreationInputTokens) ?? 0;
    tokens.cacheRead += num(entry.cacheReadInputTokens) ?? 0;
    const cost = num(entry.costUSD) ?? 0;
    if (cost > topCost) [model, topCost] = [name, cost];
  }
  return { ...(tokens ? { tokens } : {}), ...(model ? { model } : {}) };
}

/**
 * A parser for Claude Code's `--output-format stream-json` lines. Readable lines: assistant text split into
 * lines, one `[tool] Name input` line per tool call, the final result text, and non-JSON lines as they are.
 * System events, tool results and thinking stay out of the text log (they are in the raw log).
 */
export function createStreamJsonParser(): AgentOutputParser {
  const result: AgentResult = { sawResult: false, isError: false };
  /** The last rejected `rate_limit_event`: the structured word on a limit, preferred over any text. */
  let rejected: UsageLimitNotice | undefined;
  /**
   * A limit message that was a whole assistant text or non-JSON line (not a text quoting one, which the agent
   * may well print while working on such code): believed only if the run then fails.
   */
  let limitSeenInText: UsageLimitNotice | undefined;

  function noteLimitMessage(text: string): void {
    if (limitSeenInText === undefined && isUsageLimitMessage(text)) limitSeenInText = parseUsageLimitText(text);
  }
  /** What the final result said about a limit. */
  let limitInResult: UsageLimitNotice | undefined;

  function onAssistant(event: Json): string[] {
    const message = event.message;
    if (!isObject(message) || !Array.isArray(message.content)) return [];
    const out: string[] = [];
    for (const block of message.content) {
      if (!isObject(block)) continue;
      if (block.type === 'text') {
        const text = str(block.text) ?? '';
        noteLimitMessage(text);
        out.push(...textLines(text));
      } else if (block.type === 'tool_use') {
        const summary = summarizeToolInput(block.input);
        out.push(`[tool] ${str(block.name) ?? 'unknown'}${summary ? ` ${summary}` : ''}`);
      }
    }
    return out;
  }

  function onResult(event: Json): string[] {
    result.sawResult = true;
    result.isError = event.is_error === true;
    const cost = num(event.total_cost_usd);
    if (cost !== undefined) result.costUsd = cost;
    const turns = num(event.num_turns);
    if (turns !== undefined) result.numTurns = turns;
    const byModel = ofModelUsage(event.modelUsage);
    const tokens = tokensOfUsage(event.usage) ?? byModel.tokens;
    if (tokens) result.tokens = tokens;
    // The init event's model is the session's main one; modelUsage may also list helpers (a cheaper model for titles).
    if (result.model === undefined && byModel.model) result.model = byModel.model;
    const text = str(event.result);
    if (text !== undefined) result.resultText = text;
    const subtype = str(event.subtype);
    if (subtype === BUDGET_SUBTYPE) result.budgetExceeded = true;
    const inText = text === undefined ? undefined : parseUsageLimitText(text);
    if (result.isError && event.api_error_status === 429) limitInResult = { source: 'api_error' };
    // A successful result is a limit only when its text is the limit message, not a report quoting one.
    else if (inText && (result.isError || isUsageLimitMessage(text!))) limitInResult = inText;
    else limitInResult = undefined;
    if (text !== undefined && text.trim() !== '') return textLines(text);
    return result.isError ? [`[error] ${subtype ?? 'error'}`] : [];
  }

  /**
   * The limit the run stopped at, if it did: the structured signal first (a rejected rate_limit_event), then
   * what the result said (a 429, a limit message), then a message seen on the way — the event and that message
   * only when the run did not succeed. A signal without a reset takes it from a message that has one.
   */
  function usageLimit(): UsageLimitNotice | undefined {
    const failed = !result.sawResult || result.isError;
    const said = limitInResult ?? (failed ? limitSeenInText : undefined);
    const notice = (failed ? rejected : undefined) ?? said;
    if (!notice) return undefined;
    if (notice.resetAt !== undefined || notice.resetWallClock) return notice;
    const withReset = [said, limitSeenInText].find((other) => other && (other.resetAt !== undefined || other.resetWallClock));
    if (!withReset) return notice;
    return { ...notice, resetAt: withReset.resetAt, resetWallClock: withReset.resetWallClock, limitType: notice.limitType ?? withReset.limitType };
  }

  return {
    pushLine(line: string): string[] {
      const trimmed = line.trim();
      if (trimmed === '') return [];
      let event: unknown;
      try {
        event = JSON.parse(trimmed);
      } catch {
        noteLimitMessage(line);
        return [line];
      }
      if (!isObject(event)) return [line];
      const sessionId = str(event.session_id);
      // The result's session id wins; earlier events only fill it in (a resumed session keeps its id).
      if (sessionId && (event.type === 'result' || result.sessionId === undefined)) result.sessionId = sessionId;
      if (event.type === 'system' && event.subtype === 'init') {
        const model = str(event.model);
        if (model) result.model = model;
        return [];
      }
      if (event.type === 'assistant') return onAssistant(event);
      if (event.type === 'result') return onResult(event);
      if (event.type === 'rate_limit_event') {
        const notice = parseRateLimitEvent(event);
        if (notice) {
          rejected = notice;
          return [`[rate limit] ${notice.limitType ?? 'usage'} limit reached${notice.resetAt !== undefined ? `; resets ${new Date(notice.resetAt).toISOString()}` : ''}`];
        }
      }
      return [];
    },
    result(): AgentResult {
      const limit = usageLimit();
      return { ...result, ...(result.tokens ? { tokens: { ...result.tokens } } : {}), ...(limit ? { usageLimit: limit } : {}) };
    },
  };
}

/** The Claude Code CLI agent (the default). */
export const claudeAgent: Agent = {
  name: 'claude',
  buildCommand(spec: AgentRunSpec, env: NodeJS.ProcessEnv): AgentCommand {
    return { file: resolveClaudeBin(env), args: buildClaudeArgs(spec), stdin: spec.prompt, env: {} };
  },
  createParser: createStreamJsonParser,
  describeSpawnError: missingBinaryExplainer('claude', CLAUDE_INSTALL_HINT),
};
