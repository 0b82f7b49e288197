/** This build's version; a test checks it matches package.json. Written to node rows so mixed fleets are visible. */
export const delegateVersion = '0.1.0';
