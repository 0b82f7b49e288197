/**
 * How a tool of the MCP server is declared and served. A tool is a thin adapter over the engine API: an input
 * shape (zod, published in tools/list with its types, ranges and descriptions), an output shape (its
 * `structuredContent`, also published), annotations, and `run`, which calls TaskService and returns the data
 * plus a short text for the model.
 *
 * Validation is done here, not by the SDK. The SDK's `registerTool` parses the arguments against the registered
 * schema before the handler and answers bad ones with "MCP error -32602: Input validation error: …" and a JSON
 * dump of zod issues. So each tool registers a schema that accepts any object but whose JSON Schema (what
 * tools/list sends) is the real one, and the handler parses with the real schema: bad input becomes
 * `isError: true` with the engine's one-line message.
 *
 * The output schema is registered the same way. The SDK would otherwise parse every result against it, and that
 * was a third of a TaskStatus page's time on the server (and its garbage): a check of this code, not of the
 * client's input. `run`'s type already ties each result to its schema, and the tests check every result against
 * the published JSON Schema, as the SDK's client does once it has listed the tools.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { UsageError, isStoreError, isUsageError } from '../../../engine/errors.js';
import type { Logger } from '../../../engine/logger.js';
import type { RunnerState } from '../../../engine/runner-control.js';
import type { ScheduleService } from '../../../engine/schedule-service.js';
import type { TaskService } from '../../../engine/task-service.js';
import type { UsageService } from '../../../engine/usage-service.js';
import { intInRange, parseInput, shown } from '../../../engine/task-input.js';

/** What happened when a tool made sure a runner serves the data dir (SPEC §2). */
export interface RunnerReport {
  /** `running`: one was up; `started`/`starting`: this or another front door started one; `disabled`: none is up and DELEGATE_AUTOSTART=0; `failed`: starting one failed. */
  runner: RunnerState | 'failed';
  /** One sentence for the result text. */
  note: string;
}

/** What the tools need from the process that serves them. */
export interface ToolDeps {
  tasks: TaskService;
  schedules: ScheduleService;
  usage: UsageService;
  /** Make sure a runner serves this data dir; never throws (a failure is reported, the task stays queued). */
  ensureRunner(): Promise<RunnerReport>;
  logger: Logger;
  /** Aborts when the server is closing, so a long call (WaitForTask) ends and the server can exit. */
  closing?: AbortSignal;
  /** DELEGATE_ALLOW_SHELL_AGENT: whether this client may queue `shell` tasks; refused when not set. */
  allowShellAgent?: boolean;
}

/** What one call of a tool has besides its input: its cancellation and, when the client asked, a progress channel. */
export interface ToolCall {
  /** Aborts when the client cancels the request (`notifications/cancelled`) or the connection closes. */
  signal: AbortSignal;
  /**
   * Send `notifications/progress` for this request; undefined when the client sent no progressToken. Never
   * throws: a client that went away just misses the notification.
   */
  progress: ((update: { progress: number; total?: number; message?: string }) => Promise<void>) | undefined;
}

/** A tool's answer: the structured result and a short human text. */
export interface ToolReply<Out> {
  text: string;
  data: Out;
}

/** The declaration of one tool. */
export interface ToolSpec<In extends z.ZodRawShape, Out extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: In;
  output: Out;
  annotations: Omit<ToolAnnotations, 'title'>;
  run(input: z.output<z.ZodObject<In>>, deps: ToolDeps, call: ToolCall): Promise<ToolReply<z.output<z.ZodObject<Out>>>>;
}

/** A declared tool, ready to be registered on a server. */
export interface McpTool {
  name: string;
  /** `deps` may still be on its way (the stdio server opens its database while it answers initialize); calls wait for it. */
  register(server: McpServer, deps: ToolDeps | Promise<ToolDeps>): void;
}

/** Declare a tool. */
export function defineTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(spec: ToolSpec<In, Out>): McpTool {
  const schema = z.object(spec.input).strict();
  return {
    name: spec.name,
    register(server, deps) {
      server.registerTool(
        spec.name,
        {
          title: spec.title,
          description: spec.description,
          inputSchema: acceptingAnyObjectPublishing(schema, 'input'),
          outputSchema: acceptingAnyObjectPublishing(z.object(spec.output), 'output'),
          annotations: { title: spec.title, ...spec.annotations },
        },
        async (args, extra) => {
          const ready = await deps;
          return answer(spec, schema, args, ready, callOf(extra, ready));
        },
      );
    },
  };
}

async function answer<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
  spec: ToolSpec<In, Out>,
  schema: z.ZodObject<In>,
  args: Record<string, unknown>,
  deps: ToolDeps,
  call: ToolCall,
): Promise<CallToolResult> {
  try {
    const input = parseInput(schema, args);
    refuseShellAgent(input, deps);
    const reply = await spec.run(input, deps, call);
    deps.logger.debug('tool call', { tool: spec.name });
    return { content: [{ type: 'text', text: reply.text }], structuredContent: reply.data as Record<string, unknown> };
  } catch (error) {
    if (isUsageError(error)) {
      deps.logger.debug('tool call refused', { tool: spec.name, error: error.message });
      return toolError(error.message);
    }
    if (call.signal.aborted) {
      // The SDK sends nothing for a cancelled request; this result only ends the handler.
      deps.logger.debug('tool call cancelled', { tool: spec.name });
      return toolError(`${spec.name} was cancelled`);
    }
    if (isStoreError(error)) {
      // The database's fault, not ours: its message already says what to do.
      deps.logger.warn('tool call failed', { tool: spec.name, code: error.code, error: error.message });
      return toolError(error.message);
    }
    const message = error instanceof Error ? error.message : String(error);
    deps.logger.error('tool call failed', { tool: spec.name, error: message });
    return toolError(`${spec.name} failed: ${message.split('\n')[0]}`);
  }
}

/** The call context of one request, from what the SDK hands a tool handler. */
function callOf(extra: RequestHandlerExtra<ServerRequest, ServerNotification>, deps: ToolDeps): ToolCall {
  const token = extra._meta?.progressToken;
  return {
    signal: extra.signal,
    progress:
      token === undefined
        ? undefined
        : async (update) => {
            try {
              await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, ...update } });
            } catch (error) {
              deps.logger.debug('progress notification not sent', { error: String(error) });
            }
          },
  };
}

/**
 * An MCP client is a model: letting it run arbitrary commands through the `shell` agent must be the user's
 * explicit choice. Checked here, for every tool with an `agent` field, so a new tool cannot forget it. Retrying
 * or resuming a shell task a person queued stays allowed: it runs the command that person chose.
 */
function refuseShellAgent(input: unknown, deps: ToolDeps): void {
  if (deps.allowShellAgent === true) return;
  if (typeof input === 'object' && input !== null && (input as { agent?: unknown }).agent === 'shell') {
    throw new UsageError('invalid_input', "agent 'shell': not allowed for MCP clients unless DELEGATE_ALLOW_SHELL_AGENT=1 is set in the server's environment");
  }
}

/** A tool result that reports a mistake or failure in one line. */
function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/**
 * A schema that accepts any object (so the SDK's own validation never answers for us, nor spends time on it) and
 * whose JSON Schema is that of `schema` (so clients still see the exact types, enums, ranges and descriptions).
 * Converted on the first tools/list through zod's own hook for a schema's JSON Schema, not at registration: the
 * 30 conversions were ~25 ms of every server's start, before it could answer initialize.
 */
function acceptingAnyObjectPublishing(schema: z.ZodObject, io: 'input' | 'output'): z.ZodType<Record<string, unknown>> {
  let published: Record<string, unknown> | undefined;
  const accepting = z.looseObject({});
  accepting._zod.toJSONSchema = () => {
    if (!published) {
      const { $schema: _dialect, ...converted } = z.toJSONSchema(schema, { target: 'draft-7', io });
      published = converted;
    }
    // A copy: the conversion that asked for it may add to what it gets.
    return structuredClone(published);
  };
  return accepting;
}

/** A whole number in a range, with one-line messages like the engine's. */
export const wholeNumber = intInRange;
export { shown };

/** A choice among fixed strings, with a one-line message listing them. */
export function oneOf<const T extends readonly [string, ...string[]]>(field: string, values: T) {
  const allowed = values.length === 2 ? values.join(' or ') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
  return z.enum(values, { error: (issue) => `${field} ${shown(issue.input)}: expected ${allowed}` });
}
