/** A bad input of the Action: the step fails with this one line, which starts with the input's name, before anything is written. */
export class ActionInputError extends Error {
  constructor(
    /** The input's name as in action.yml, e.g. `tasks`. */
    readonly input: string,
    /** What is wrong and what is allowed; the input's name (or a path into it, `tasks[1].priority`) is put first when missing. */
    problem: string,
  ) {
    super(problem.startsWith(input) ? problem : `${input}: ${problem}`);
    this.name = 'ActionInputError';
  }
}
