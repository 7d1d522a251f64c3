// A real OpenID provider (the npm package oidc-provider) on a loopback port, for hoopx's
// identity tests (tests/oidc.rs starts it with node).
//
// Environment:
//   HOOPX_TEST_AUDIENCE   the gateway's audience (resource indicator), e.g. urn:hoopx:gateway
//   HOOPX_TEST_OUT        a directory: the signing key is written there (private.pem,
//                         public.pem, kid) so the tests can forge bad tokens with it
//   HOOPX_TEST_ACCESS_TTL access token lifetime in seconds (default 600)
//   HOOPX_TEST_GROUPS     JSON {"account or client id": ["group", ...]}
//   HOOPX_TEST_OPAQUE     1: no resource indicators, so access tokens are opaque (as
//                         Google's are); userinfo then has the groups
//
// Prints `listening on http://127.0.0.1:PORT` when ready.
//
// Test helpers (not part of OpenID; only on this test provider, standing in for a person
// at the browser):
//   POST /test/approve {"user_code": "...", "account": "alice"}  approves a device code
//   POST /test/deny    {"user_code": "..."}                       denies it
//   GET  /interaction/UID  logs the browser in as HOOPX_TEST_BROWSER_ACCOUNT (default
//                          alice) and consents, at once (the login page a person would see)

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import Provider from 'oidc-provider';

const audience = process.env.HOOPX_TEST_AUDIENCE || 'urn:hoopx:gateway';
const out = process.env.HOOPX_TEST_OUT;
const accessTtl = Number(process.env.HOOPX_TEST_ACCESS_TTL || '600');
const groups = JSON.parse(process.env.HOOPX_TEST_GROUPS || '{}');
const opaque = process.env.HOOPX_TEST_OPAQUE === '1';

const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = `test-${crypto.randomBytes(6).toString('hex')}`;
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
if (out) {
  fs.writeFileSync(path.join(out, 'private.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(path.join(out, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  fs.writeFileSync(path.join(out, 'kid'), kid);
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: 'hoopx-cli',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    {
      // The gateway's own client, for RFC 7662 introspection of opaque tokens.
      client_id: 'hoopx-gateway',
      client_secret: 'hoopx-gateway-secret-0123456789',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'ci-bot',
      client_secret: 'ci-bot-secret-0123456789',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'hoopx'],
  claims: { openid: ['sub', 'groups'], email: ['email'] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, groups: groups[id] || [] }),
  }),
  extraTokenClaims: async (_ctx, token) => {
    const who = token.accountId || token.clientId;
    return groups[who] ? { groups: groups[who] } : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: !opaque,
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== audience) throw new Error(`unknown resource ${resource}`);
        return {
          scope: 'hoopx',
          audience,
          accessTokenTTL: accessTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    DeviceCode: 600,
    RefreshToken: 86400,
    Grant: 86400,
  },
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
});

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString() || '{}');
}

async function decide(req, res, approve) {
  const b = await body(req);
  const code = await provider.DeviceCode.findByUserCode(String(b.user_code || '').replace(/[^A-Za-z]/g, '').toUpperCase());
  if (!code) {
    res.writeHead(404).end('no such user code\n');
    return;
  }
  if (approve) {
    const grant = new provider.Grant({ accountId: b.account, clientId: code.clientId });
    grant.addOIDCScope('openid offline_access');
    if (!opaque) grant.addResourceScope(audience, 'hoopx');
    const grantId = await grant.save();
    Object.assign(code, {
      accountId: b.account,
      authTime: Math.floor(Date.now() / 1000),
      grantId,
      scope: opaque ? 'openid offline_access' : 'openid offline_access hoopx',
      ...(opaque ? {} : { resource: audience }),
    });
  } else {
    Object.assign(code, { error: 'access_denied', errorDescription: 'the user denied the request' });
  }
  await code.save();
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}\n');
}

// Poll every second instead of RFC 8628's default 5 s: the tests wait for logins.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/device/auth' && ctx.body && typeof ctx.body === 'object') {
    ctx.body.interval = 1;
  }
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = process.env.HOOPX_TEST_BROWSER_ACCOUNT || 'alice';
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope('openid offline_access');
  if (!opaque) grant.addResourceScope(audience, 'hoopx');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const app = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => res.writeHead(500).end(`${e.stack}\n`));
  } else if (req.method === 'POST' && req.url === '/test/approve') {
    decide(req, res, true).catch((e) => res.writeHead(500).end(`${e.stack}\n`));
  } else if (req.method === 'POST' && req.url === '/test/deny') {
    decide(req, res, false).catch((e) => res.writeHead(500).end(`${e.stack}\n`));
  } else {
    app(req, res);
  }
});
provider.on('server_error', (_ctx, e) => console.error('server_error', e));
provider.on('grant.error', (_ctx, e) => console.error('grant.error', e.message, e.error_description || ''));
console.log(`listening on ${issuer}`);
