// Starts Unleash 8 for `make bench-peer` (bench/peer/compare/unleash.py): its own PostgreSQL, loopback only.
// Unleash is ESM only, hence an .mjs file. Everything it must not do on a bench machine is turned off
// here or by the environment the harness sets (telemetry, version checks, rate limits, request logs).
// Environment: UNLEASH_DB_PORT, UNLEASH_HTTP_PORT, plus Unleash's own INIT_*_API_TOKENS and *_RATE_LIMIT_*.
import { start } from 'unleash-server';

const port = Number(process.env.UNLEASH_HTTP_PORT);
const dbPort = Number(process.env.UNLEASH_DB_PORT);
if (!port || !dbPort) {
    console.error('UNLEASH_HTTP_PORT and UNLEASH_DB_PORT are required');
    process.exit(2);
}

const unleash = await start({
    db: { host: '127.0.0.1', port: dbPort, user: 'postgres', password: '', database: 'postgres', ssl: false },
    server: { host: '127.0.0.1', port, enableRequestLogger: false },
    authentication: { type: 'open-source', createAdminUser: false },
    versionCheck: { enable: false },
    logLevel: process.env.UNLEASH_LOG_LEVEL || 'warn',
});
console.log(`unleash ready on http://127.0.0.1:${port}`);

async function stop() {
    try {
        await unleash.stop();
    } finally {
        process.exit(0);
    }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
