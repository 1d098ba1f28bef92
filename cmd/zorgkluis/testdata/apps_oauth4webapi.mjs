// A public client with oauth4webapi (npm), a client nobody here wrote:
// RFC 8414 discovery, PKCE S256, the authorization response checked
// (state, iss), the code exchange, a FHIR read, and then the code sent a
// second time: refused with invalid_grant, and the tokens it gave revoked.
// The person's consent happens in the Go test: this script prints the
// authorization URL and reads the callback URL on stdin.
import * as oauth from 'oauth4webapi';
import { createInterface } from 'node:readline';

const base = process.env.ZK_BASE;
const redirect = process.env.ZK_REDIRECT;
const issuer = new URL(base);
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }));
const client = { client_id: process.env.ZK_CLIENT_ID };
const auth = oauth.None();
const verifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const url = new URL(as.authorization_endpoint);
for (const [k, v] of Object.entries({
  client_id: client.client_id, redirect_uri: redirect, response_type: 'code', scope: 'patient/Observation.rs',
  code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, aud: base + '/fhir',
})) url.searchParams.set(k, v);
console.log(JSON.stringify({ authorize: url.href }));

const rl = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => rl.once('line', resolve));
rl.close();

const out = {};
const params = oauth.validateAuthResponse(as, client, new URL(callback), state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client,
  await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirect, verifier));
out.tokenType = tokens.token_type;
const read = async (token) => {
  try {
    const r = await oauth.protectedResourceRequest(token, 'GET', new URL(`${base}/fhir/Observation?patient=${tokens.patient}`),
      new Headers({ Accept: 'application/fhir+json' }));
    return r.status;
  } catch (e) {
    return e.response?.status ?? e.status ?? String(e.code ?? e);
  }
};
out.read = await read(tokens.access_token);
try {
  await oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirect, verifier));
  out.replay = 'accepted';
} catch (e) {
  out.replay = e.error ?? String(e);
}
out.afterReplay = await read(tokens.access_token);
console.log(JSON.stringify(out));
