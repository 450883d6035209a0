/**
 * OPC UA source: what the daemon and the CLI use. Importing this module does not load node-opcua (seconds);
 * the source and `browse` load it when they run.
 */
export { OpcuaSource } from './opcua-source.js';
export { pkiCommand } from './pki-command.js';
export { browseCommand } from './browse-command.js';
export { checkOpcuaConfig, effectivePolicy, OpcuaServerSchema, OpcuaTagSchema, type OpcuaServerConfig, type OpcuaTagConfig } from './config.js';
export { PkiStore } from './pki-store.js';
