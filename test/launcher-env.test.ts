import { describe, expect, it } from 'vitest';
import { launcherEnv } from '../engine/pool/launcher.js';

describe('the agent environment', () => {
  it('passes a safelist and never the database credentials', () => {
    const env = launcherEnv(
      {
        PATH: '/bin',
        HOME: '/home/u',
        ANTHROPIC_API_KEY: 'k',
        DELEGATE_DATA_DIR: '/d',
        DELEGATE_DATABASE_TOKEN: 'secret-token',
        DELEGATE_DATABASE_URL: 'libsql://user:pass@db',
        AWS_SECRET_ACCESS_KEY: 'aws',
        GITHUB_TOKEN: 'gh',
        LC_ALL: 'C',
      },
      { EXTRA: '1' },
    );
    expect(env).toEqual({ PATH: '/bin', HOME: '/home/u', ANTHROPIC_API_KEY: 'k', DELEGATE_DATA_DIR: '/d', LC_ALL: 'C', EXTRA: '1' });
  });
});
