import path from 'node:path';
import { openStore } from '../engine/store/store.js';
import { exerciseStore } from './store-contract.js';
import { removeDir, tempDir } from './helpers.js';
import { sqldAvailable, startSqld, type SqldServer } from './sqld.js';

function fileFactory(driver: 'embedded' | 'client') {
  return () => {
    const dir = tempDir();
    const url = `file:${path.join(dir, 'delegate.db')}`;
    return {
      open: () => openStore(url, { driver }),
      // Two @libsql/client connections in one thread contend through SQLite's synchronous busy wait and take
      // seconds per batch; production never does that (one store per process; a remote server serialises
      // writes itself). The claim SQL is shared, so exclusivity is exercised on the embedded driver.
      second: driver === 'embedded' ? () => openStore(url, { driver }) : null,
      cleanup: () => removeDir(dir),
    };
  };
}

exerciseStore('embedded libsql, file', fileFactory('embedded'));
exerciseStore('embedded libsql, :memory:', () => ({ open: () => openStore(':memory:'), second: null, cleanup: () => undefined }));
exerciseStore('@libsql/client, file', fileFactory('client'));

// The same contract on a real libSQL server, over WebSockets (`libsql://`) and over HTTP (`http://`): one fresh
// sqld per test (it starts in ~15 ms).
if (sqldAvailable) {
  for (const protocol of ['libsql', 'http'] as const) {
    exerciseStore(`@libsql/client, sqld server, ${protocol}://`, () => {
      let server: SqldServer | null = null;
      // libsql:// is what users write (WebSockets underneath); http:// is for proxies that do not pass them.
      const urlOf = (running: SqldServer) => (protocol === 'http' ? running.httpUrl : running.url);
      return {
        open: async () => {
          server = await startSqld();
          return openStore(urlOf(server));
        },
        // A second client is a second host: the server serialises their writes.
        second: () => openStore(urlOf(server!)),
        cleanup: () => void server?.cleanup(),
      };
    });
  }
}
