/**
 * One mailbox per actor in this process (DESIGN §1): the steps of one actor run one at a time, in the order
 * they were sent, while different actors' steps run side by side.
 */
export class Mailboxes {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Run `step` after every step queued before it for `key`. */
  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    return this.runAll([key], step);
  }

  /**
   * Run `step` once every step queued before it for each of `keys` has finished, holding all their mailboxes
   * meanwhile: one step for several actors (a batch committed in one transaction).
   */
  runAll<T>(keys: readonly string[], step: () => Promise<T>): Promise<T> {
    const previous = keys.map((key) => this.#tails.get(key)).filter((tail) => tail !== undefined);
    const result = (previous.length === 0 ? Promise.resolve() : Promise.all(previous)).then(step);
    const tail = result.catch(() => undefined);
    for (const key of keys) this.#tails.set(key, tail);
    void tail.then(() => {
      for (const key of keys) if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Wait until every step queued so far has finished (shutdown). */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
