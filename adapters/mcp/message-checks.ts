/**
 * One-line reasons why a message from the client cannot be served, for the JSON-RPC error that answers it. The
 * SDK's own checks throw zod's multi-line issue dumps; these name the field, its value and what was expected, as
 * every other message of delegate does.
 */
import type { RequestId } from '@modelcontextprotocol/sdk/types.js';

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
