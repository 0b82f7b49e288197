/**
 * One mailbox per actor in this process (DESIGN §1): the steps of one actor run one at a time, in the order
 * they were sent, while different actors' steps run side by side.
 */
export class Mailboxes {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Run `step` after every step queued before it for `key`. */
  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(step);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Wait until every step queued so far has finished (shutdown). */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
