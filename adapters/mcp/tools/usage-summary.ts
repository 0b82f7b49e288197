/** UsageSummary: what the agents cost, in total and per day, agent or schedule. */
import { z } from 'zod';
import { usageGroupings, usageQueryShape } from '../../../engine/usage-service.js';
import { formatUsage } from '../../cli/format.js';
import { tokenCountsSchema } from './task-view.js';
import { defineTool } from './tool.js';

const totals = {
  costUsd: z.number().describe('US dollars the agents reported (runs that reported none count as 0).'),
  turns: z.number().describe('Agent turns.'),
  tokens: tokenCountsSchema,
  runs: z.number().describe('Runs that ended in the period.'),
};

export const usageSummary = defineTool({
  name: 'UsageSummary',
  title: 'Sum what agent runs cost',
  description:
    'Cost (US dollars), tokens (input, output, cache write, cache read) and turns of every agent run that ended since a ' +
    'time, in total and optionally per day (in the runner’s time zone), agent or schedule. Earlier attempts of a task ' +
    'that ran again (after a usage limit, say) count too.',
  input: usageQueryShape(),
  output: {
    since: z.string().nullable().describe('Runs that ended at or after this time count (ISO 8601 UTC); null: every run on record.'),
    until: z.string().describe('When the summary was made (ISO 8601 UTC).'),
    by: z.enum(usageGroupings).nullable().describe('How groups are formed; null: total only.'),
    timeZone: z.string().describe('The IANA time zone days are counted in.'),
    total: z.object(totals).describe('Sums over every run in the period.'),
    groups: z
      .array(z.object({ key: z.string().nullable().describe('The day (YYYY-MM-DD), agent, or schedule id (null: tasks no schedule created).'), ...totals }))
      .describe('Days oldest first; agents and schedules costliest first. Empty without by.'),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    const summary = await deps.usage.summary(input);
    return { text: formatUsage(summary), data: summary };
  },
});
