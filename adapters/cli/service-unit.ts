/**
 * The text of the service that keeps `delegate serve` up across logins and reboots (SPEC §5, beyond): a user-level
 * systemd unit on Linux, a launchd agent on macOS. Pure: no files, no processes, so tests check the text exactly on
 * any platform.
 */
import path from 'node:path';
import { UsageError } from '../../engine/errors.js';

/** What the service runs and with which environment. */
export interface ServiceSpec {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/delegate.js. */
  bin: string;
  /** Environment of the runner, in the order written. Never a token. */
  environment: ReadonlyArray<readonly [string, string]>;
}

/** Where the service file goes, and how the service manager is told. */
export interface ServiceTarget {
  kind: 'systemd' | 'launchd';
  file: string;
  /** Commands (argv) that load and start it, run after writing the file. */
  enable: string[][];
  /** Commands (argv) that stop and unload it, run before removing the file. */
  disable: string[][];
}

/** systemd unit name, also the launchd label's last word. */
export const serviceName = 'delegate.service';
/** launchd label of the agent. */
export const launchdLabel = 'dev.delegate.serve';

/** The service file and manager commands for a platform; `env` supplies HOME and XDG_CONFIG_HOME. */
export function serviceTarget(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, uid: number): ServiceTarget {
  const home = env.HOME?.trim();
  if (!home) throw new UsageError('invalid_config', 'HOME is not set: expected the home directory the service file goes under');
  if (platform === 'darwin') {
    const file = path.join(home, 'Library', 'LaunchAgents', `${launchdLabel}.plist`);
    // bootstrap/bootout replace the deprecated load/unload; gui/<uid> is the logged-in user's domain.
    return { kind: 'launchd', file, enable: [['launchctl', 'bootstrap', `gui/${uid}`, file]], disable: [['launchctl', 'bootout', `gui/${uid}`, file]] };
  }
  // XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME?.trim();
  const configHome = xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.config');
  return {
    kind: 'systemd',
    file: path.join(configHome, 'systemd', 'user', serviceName),
    enable: [['systemctl', '--user', 'daemon-reload'], ['systemctl', '--user', 'enable', '--now', serviceName]],
    disable: [['systemctl', '--user', 'disable', '--now', serviceName]],
  };
}

/** The service file's text for the target's kind. */
export function serviceFileText(kind: ServiceTarget['kind'], spec: ServiceSpec): string {
  return kind === 'launchd' ? launchdPlist(spec) : systemdUnit(spec);
}

/** A user-level systemd unit running `node <bin> serve`, restarted when it fails. */
export function systemdUnit(spec: ServiceSpec): string {
  const exec = [spec.node, spec.bin, 'serve'].map((word) => systemdWord(word, { exec: true })).join(' ');
  const environment = spec.environment.map(([name, value]) => `Environment=${systemdWord(`${name}=${value}`, { exec: false })}`);
  return [
    '[Unit]',
    'Description=delegate runner: runs queued tasks and fires schedules',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    ...environment,
    'Restart=on-failure',
    'RestartSec=5',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/**
 * One word of a unit file setting, quoted by systemd's rules: `%` starts a specifier everywhere (so `%%`), `$`
 * expands a variable in ExecStart= only (so `$$`), and inside double quotes `\` and `"` are C-escaped.
 */
export function systemdWord(value: string, options: { exec: boolean }): string {
  // A newline would end the setting and start another: nothing quoted can carry it safely.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new UsageError('invalid_input', `${JSON.stringify(value)} in the service unit: expected no control characters`);
  let word = value.replaceAll('%', '%%');
  if (options.exec) word = word.replaceAll('$', '$$$$');
  if (word !== '' && !/[\s"'\\;]/.test(word)) return word;
  return `"${word.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** A launchd agent running `node <bin> serve` at login, restarted when it exits with a failure. */
export function launchdPlist(spec: ServiceSpec): string {
  const strings = (values: string[], indent: string): string[] => values.map((value) => `${indent}<string>${xml(value)}</string>`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${launchdLabel}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...strings([spec.node, spec.bin, 'serve'], '    '),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    ...spec.environment.flatMap(([name, value]) => [`    <key>${xml(name)}</key>`, `    <string>${xml(value)}</string>`]),
    '  </dict>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    // Restart only after a failure, as systemd's Restart=on-failure: `delegate stop` stays stopped.
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

function xml(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}
