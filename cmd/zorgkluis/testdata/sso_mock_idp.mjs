// An upstream identity provider for the SSO tests: oauth2-mock-server (npm),
// an OpenID Connect provider nobody here wrote, on loopback. It logs every
// user on at once (no page) and signs real ID tokens with its own keys; a
// small control endpoint sets what the next ID token says (amr, auth_time,
// and, to test the refusals, a wrong nonce, issuer or audience).
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');

let next = {};
server.service.on('beforeTokenSigning', (token) => {
  if ('scope' in token.payload) return; // the access token; only the ID token is shaped
  const n = next;
  next = {};
  token.payload.sub = n.sub ?? 'johndoe';
  delete token.payload.amr;
  if (n.amr) token.payload.amr = n.amr;
  token.payload.auth_time = Math.floor(Date.now() / 1000) - (n.authAge ?? 5);
  for (const k of ['nonce', 'iss', 'aud', 'acr']) if (n[k] !== undefined) token.payload[k] = n[k];
});

const control = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => { next = JSON.parse(body || '{}'); res.end('ok'); });
});
control.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer: server.issuer.url, control: `http://127.0.0.1:${control.address().port}` }));
});
