/**
 * One-line reasons why a message from the client cannot be served, for the JSON-RPC error that answers it. The
 * SDK's own checks throw zod's multi-line issue dumps (and for params inside a handler answer −32603 Internal
 * error); these name the field, its value and what was expected, as every other message of delegate does.
 */
import { ClientRequestSchema, type JSONRPCRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';

/** The fields a JSON-RPC request or notification may have (the SDK's schemas are strict about the rest). */
const requestFields = ['jsonrpc', 'id', 'method', 'params'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value as a message shows it: strings quoted, everything else as JSON, cut short (a line may be megabytes). */
function brief(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  const text = typeof value === 'string' ? `'${json.slice(1, -1)}'` : json;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The message's id when it has a valid one, else null (JSON-RPC 2.0: null when the id cannot be determined). */
export function requestIdOf(value: unknown): RequestId | null {
  if (!isRecord(value)) return null;
  const id = value.id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? id : null;
}

/** True for something shaped like a response (no method; a result or an error): it is dropped, never answered. */
export function looksLikeResponse(value: unknown): boolean {
  return isRecord(value) && !('method' in value) && ('result' in value || 'error' in value);
}

/** Why a parsed JSON value that failed the SDK's JSONRPCMessageSchema is no request or notification (one line). */
export function invalidRequestReason(value: unknown): string {
  if (Array.isArray(value)) return 'expected one JSON-RPC object per line (got an array; batches are not supported)';
  if (!isRecord(value)) return `expected one JSON-RPC object per line (got ${brief(value)})`;
  if (value.jsonrpc === undefined) return 'jsonrpc: missing; expected "2.0"';
  if (value.jsonrpc !== '2.0') return `jsonrpc ${brief(value.jsonrpc)}: expected "2.0"`;
  if ('id' in value && requestIdOf(value) === null) return `id ${brief(value.id)}: expected a string or an integer`;
  if (value.method === undefined) return 'method: missing; expected a request or a notification';
  if (typeof value.method !== 'string') return `method ${brief(value.method)}: expected a string`;
  if ('params' in value && !isRecord(value.params)) return `params ${brief(value.params)}: expected an object`;
  const unknown = Object.keys(value).filter((key) => !requestFields.includes(key));
  if (unknown.length > 0) return `${unknown.join(', ')}: unknown field; a request has jsonrpc, id, method and params`;
  return 'not a valid JSON-RPC 2.0 request or notification';
}

/** The SDK's schema of each MCP request a client may send, by method. */
const requestSchemas = new Map<string, z.ZodType>(ClientRequestSchema.options.map((schema) => [schema.shape.method.value, schema]));

const typeWords: Record<string, string> = {
  object: 'an object',
  record: 'an object',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'an array',
};

/** A field's path as users write it: `params.arguments`, `params.items[0]`. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index > 0 ? '.' : ''}${String(part)}`)).join('');
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = root;
  for (const part of path) value = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  return value;
}

/** Why a request's params do not fit its MCP method ("tools/call params.arguments 42: expected an object"), else undefined. */
export function paramsProblem(request: JSONRPCRequest): string | undefined {
  const schema = requestSchemas.get(request.method);
  // Not one of MCP's methods: the SDK answers −32601 Method not found for those.
  if (!schema) return undefined;
  const subject = { method: request.method, params: request.params };
  const result = schema.safeParse(subject);
  const issue = result.error?.issues[0];
  if (!issue) return undefined;
  const field = fieldPath(issue.path);
  const value = valueAt(subject, issue.path);
  const expected = issue.code === 'invalid_type' ? `expected ${typeWords[issue.expected] ?? issue.expected}` : issue.message.replace(/\s+/g, ' ');
  if (value === undefined) return `${request.method} ${field}: missing; ${expected}`;
  return `${request.method} ${field} ${brief(value)}: ${expected}`;
}
