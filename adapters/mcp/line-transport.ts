/**
 * The MCP server's stdio transport: newline-delimited JSON-RPC that never goes silent. The SDK's
 * StdioServerTransport closes itself for good on a message over 10 MiB and answers a line that is not JSON or
 * not JSON-RPC with nothing; this one answers each such line with a JSON-RPC error and reads on:
 *
 * - a line over `maxMessageBytes` (DELEGATE_MCP_MAX_MESSAGE_BYTES): −32600 Invalid Request with `id: null`, since
 *   its id was never read (it is not JSON that failed to parse, so not −32700); the rest of it, up to its
 *   newline, is dropped unread.
 * - a line that is not JSON: −32700 Parse error, `id: null`.
 * - JSON that is not a JSON-RPC request or notification: −32600 Invalid Request, with the message's id when it
 *   has a valid one, else `id: null`. Something shaped like a response is dropped: responses are never answered.
 *
 * `id: null` is what JSON-RPC 2.0 prescribes when the id cannot be determined; MCP's schema instead leaves the id
 * out, so the SDK's client reports such a reply to its onerror and reads on. Every refusal is also reported to
 * `onerror` in one line (the server logs it to stderr); stdout carries protocol messages only.
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, JSONRPCMessageSchema, type JSONRPCMessage, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { invalidRequestReason, looksLikeResponse, requestIdOf } from './message-checks.js';

/** An error reply whose id may be null, which the SDK's JSONRPCMessage type does not allow. */
interface Refusal {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string };
}

const newline = 0x0a;

/** Options of a LineTransport. */
export interface LineTransportOptions {
  /** The longest line it reads, in bytes without the newline; a longer one is refused and skipped. */
  maxMessageBytes: number;
}

/** JSON-RPC over newline-delimited streams (stdin/stdout) that answers bad lines with errors instead of closing. */
export class LineTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  /** Called once when the input ends, after the messages read before the end were delivered. */
  onend?: (() => void) | undefined;

  /** The bytes of the line being read, kept as received: concatenating per chunk would copy a big line over and over. */
  private pieces: Buffer[] = [];
  private pendingBytes = 0;
  /** True from an oversized line's refusal to its newline: its bytes are dropped as they come. */
  private skipping = false;
  private started = false;
  private closed = false;
  private markFirstInput!: () => void;
  /** Resolves once the first input read has been handled (or the input ended, or the transport closed). */
  readonly firstInput = new Promise<void>((resolve) => (this.markFirstInput = resolve));

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: LineTransportOptions,
  ) {}

  async start(): Promise<void> {
    if (this.started) throw new Error('LineTransport already started');
    this.started = true;
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', this.onInputError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.write(message);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('error', this.onInputError);
    // Pausing a stream someone else still reads would starve them.
    if (this.input.listenerCount('data') === 0) this.input.pause();
    this.pieces = [];
    this.pendingBytes = 0;
    this.markFirstInput();
    this.onclose?.();
  }

  private readonly onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    while (!this.closed) {
      const end = bytes.indexOf(newline, start);
      this.take(bytes.subarray(start, end === -1 ? bytes.length : end));
      if (end === -1) break;
      this.lineEnded();
      start = end + 1;
    }
    this.markFirstInput();
  };

  private readonly onEnd = (): void => {
    // A last message without its newline is still a message: answer it rather than drop it silently.
    if (!this.skipping && this.pendingBytes > 0) this.lineEnded();
    this.markFirstInput();
    this.onend?.();
  };

  private readonly onInputError = (error: Error): void => {
    this.onerror?.(error);
  };

  private take(piece: Buffer): void {
    if (this.skipping || piece.length === 0) return;
    const { maxMessageBytes } = this.options;
    if (this.pendingBytes + piece.length > maxMessageBytes) {
      this.pieces = [];
      this.pendingBytes = 0;
      this.skipping = true;
      // Refused now, not at its newline: a client that never sends one still gets its answer.
      this.refuse(null, ErrorCode.InvalidRequest, `Invalid Request: message over ${maxMessageBytes} bytes (DELEGATE_MCP_MAX_MESSAGE_BYTES); dropped up to its newline`);
      return;
    }
    this.pieces.push(piece);
    this.pendingBytes += piece.length;
  }

  private lineEnded(): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    const line = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.pendingBytes);
    this.pieces = [];
    this.pendingBytes = 0;
    this.handle(line.toString('utf8'));
  }

  private handle(line: string): void {
    // Blank lines (a stray newline, or the \r of a \r\n) carry nothing to answer.
    if (!/\S/.test(line)) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 200);
      this.refuse(null, ErrorCode.ParseError, `Parse error: ${reason}`);
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(value);
    if (!parsed.success) {
      if (looksLikeResponse(value)) this.onerror?.(new Error(`dropped a malformed response (id ${JSON.stringify(requestIdOf(value))})`));
      else this.refuse(requestIdOf(value), ErrorCode.InvalidRequest, `Invalid Request: ${invalidRequestReason(value)}`);
      return;
    }
    try {
      this.onmessage?.(parsed.data);
    } catch (error) {
      // A throwing handler must not take the read loop (and with it every later message) down.
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private refuse(id: RequestId | null, code: number, message: string): void {
    this.onerror?.(new Error(message));
    this.write({ jsonrpc: '2.0', id, error: { code, message } }).catch((error: unknown) => this.onerror?.(error instanceof Error ? error : new Error(String(error))));
  }

  /** Resolves once the line is handed to the OS, so a closing server knows its answers went out. */
  private write(message: JSONRPCMessage | Refusal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.output.write(`${JSON.stringify(message)}\n`, (error) => (error ? reject(error) : resolve()));
    });
  }
}
