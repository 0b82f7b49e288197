import path from 'node:path';
import { openStore } from '../engine/store/store.js';
import { exerciseStore } from './store-contract.js';
import { removeDir, tempDir } from './helpers.js';

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
