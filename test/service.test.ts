/**
 * `delegate service install|uninstall`: the unit and plist text exactly, systemd's quoting, and the real CLI with a
 * temp HOME and no systemctl on PATH (so it prints the commands and never touches the user's systemd).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, cliBin, removeDir, tempDir } from './helpers.js';
import { launchdPlist, serviceTarget, systemdUnit, systemdWord } from '../adapters/cli/service-unit.js';

const spec = {
  node: '/usr/bin/node',
  bin: '/opt/delegate/bin/delegate.js',
  environment: [['DELEGATE_DATA_DIR', '/home/ann/.delegate'], ['DELEGATE_IDLE_EXIT', '0']] as const,
};

describe('service unit text', () => {
  it('writes a systemd unit that runs serve and restarts on failure', () => {
    expect(systemdUnit(spec)).toBe(`[Unit]
Description=delegate runner: runs queued tasks and fires schedules
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/node /opt/delegate/bin/delegate.js serve
Environment=DELEGATE_DATA_DIR=/home/ann/.delegate
Environment=DELEGATE_IDLE_EXIT=0
Restart=on-failure
RestartSec=5

[Install]
WantedBy=default.target
`);
  });

  it("quotes by systemd's rules: spaces and quotes in double quotes, % and (in ExecStart) $ doubled", () => {
    expect(systemdWord('/a b/it\'s "x"\\y', { exec: true })).toBe('"/a b/it\'s \\"x\\"\\\\y"');
    expect(systemdWord('50%$HOME', { exec: true })).toBe('50%%$$HOME');
    expect(systemdWord('K=50% $HOME', { exec: false })).toBe('"K=50%% $HOME"');
    expect(systemdWord('', { exec: true })).toBe('""');
    expect(() => systemdWord('a\nExecStart=/bin/evil', { exec: false })).toThrow(/control characters/);
    const unit = systemdUnit({ node: '/n', bin: '/my dir/bin/delegate.js', environment: [['DELEGATE_DATA_DIR', '/data "x" dir']] });
    expect(unit).toContain('ExecStart=/n "/my dir/bin/delegate.js" serve\n');
    expect(unit).toContain('Environment="DELEGATE_DATA_DIR=/data \\"x\\" dir"\n');
  });

  it('writes a launchd agent on macOS, XML-escaped', () => {
    const target = serviceTarget('darwin', { HOME: '/Users/ann' }, 501);
    expect(target.file).toBe('/Users/ann/Library/LaunchAgents/dev.delegate.serve.plist');
    expect(target.enable).toEqual([['launchctl', 'bootstrap', 'gui/501', target.file]]);
    expect(launchdPlist({ ...spec, environment: [['DELEGATE_DATA_DIR', '/a&<b>'], ['DELEGATE_IDLE_EXIT', '0']] })).toBe(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>dev.delegate.serve</string>
  <key>ProgramArguments</key>
  <array>
    <string>/usr/bin/node</string>
    <string>/opt/delegate/bin/delegate.js</string>
    <string>serve</string>
  </array>
  <key>EnvironmentVariables</key>
  <dict>
    <key>DELEGATE_DATA_DIR</key>
    <string>/a&amp;&lt;b&gt;</string>
    <key>DELEGATE_IDLE_EXIT</key>
    <string>0</string>
  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
</dict>
</plist>
`);
  });

  it('puts the systemd unit under XDG_CONFIG_HOME when it is absolute, else ~/.config', () => {
    expect(serviceTarget('linux', { HOME: '/h', XDG_CONFIG_HOME: '/x' }, 1).file).toBe('/x/systemd/user/delegate.service');
    expect(serviceTarget('linux', { HOME: '/h', XDG_CONFIG_HOME: 'rel' }, 1).file).toBe('/h/.config/systemd/user/delegate.service');
    expect(serviceTarget('linux', { HOME: '/h' }, 1).enable).toEqual([['systemctl', '--user', 'daemon-reload'], ['systemctl', '--user', 'enable', '--now', 'delegate.service']]);
  });
});

describe.skipIf(process.platform === 'darwin')('delegate service (CLI)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let unitFile: string;

  beforeEach(() => {
    home = tempDir('delegate-service-');
    const emptyBin = path.join(home, 'bin');
    mkdirSync(emptyBin);
    // PATH holds no systemctl, so nothing reaches the real user's systemd.
    env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), PATH: emptyBin, DELEGATE_DATA_DIR: path.join(home, 'data dir') };
    unitFile = path.join(home, 'config', 'systemd', 'user', 'delegate.service');
  });

  afterEach(() => removeDir(home));

  it('install writes the unit and prints the systemctl commands; uninstall removes it', async () => {
    const dry = await cli(['service', 'install', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`ExecStart=${process.execPath} ${cliBin} serve\n`);
    expect(existsSync(unitFile)).toBe(false);

    const installed = await cli(['service', 'install'], env);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toBe(`wrote ${unitFile}\nsystemctl not found; to start the service, run:\n  systemctl --user daemon-reload\n  systemctl --user enable --now delegate.service\n`);
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toBe(dry.stdout);
    expect(unit).toContain(`Environment="DELEGATE_DATA_DIR=${path.join(home, 'data dir')}"\n`);
    expect(unit).toContain('Environment=DELEGATE_IDLE_EXIT=0\n');
    expect(unit).toContain('Restart=on-failure\n');
    expect(statSync(unitFile).mode & 0o777).toBe(0o644);

    const removed = await cli(['service', 'uninstall'], env);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`removed ${unitFile}\n`);
    expect(existsSync(unitFile)).toBe(false);
  });

  it('refuses to write a database token into the unit', async () => {
    const result = await cli(['service', 'install'], { ...env, DELEGATE_DATABASE_URL: 'libsql://db.example', DELEGATE_DATABASE_TOKEN: 'secret' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^delegate: DELEGATE_DATABASE_TOKEN is set: .*EnvironmentFile with mode 0600.*\n$/);
    expect(result.stderr).not.toContain('secret');
    expect(existsSync(unitFile)).toBe(false);
  });
});
