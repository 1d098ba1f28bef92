// An app (a PGO) connecting with openid-client v6, a client nobody here
// wrote: RFC 8414 discovery, private_key_jwt, a pushed authorization
// request with PKCE S256, the code exchange and FHIR reads with DPoP-bound
// tokens, a refresh, and revocation. The person's log-on and consent
// happen in the Go test: this script prints the authorization URL and
// reads the callback URL on stdin.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';
import { webcrypto } from 'node:crypto';

const base = process.env.ZK_BASE;
const redirect = process.env.ZK_REDIRECT;
const key = await webcrypto.subtle.importKey('jwk', JSON.parse(process.env.ZK_CLIENT_KEY),
  { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const config = await client.discovery(new URL(base), process.env.ZK_CLIENT_ID,
  { redirect_uris: [redirect], token_endpoint_auth_method: 'private_key_jwt' }, client.PrivateKeyJwt(key), { algorithm: 'oauth2' });
const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const url = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirect,
  scope: 'patient/*.rs launch/patient offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  aud: base + '/fhir',
}, { DPoP: dpop });
console.log(JSON.stringify({ authorize: url.href }));

const rl = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => rl.once('line', resolve));
rl.close();

const out = {};
const status = async (p) => {
  try {
    const r = await p;
    return r.status;
  } catch (e) {
    return e.status ?? e.response?.status ?? String(e.code ?? e);
  }
};
const tokens = await client.authorizationCodeGrant(config, new URL(callback),
  { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: dpop });
out.tokenType = tokens.token_type;
out.patient = tokens.patient;
out.scope = tokens.scope;
out.expiresIn = tokens.expires_in;

const fhir = (path, token, headers) => client.fetchProtectedResource(config, token, new URL(base + path), 'GET', undefined,
  new Headers({ Accept: 'application/fhir+json', ...headers }), { DPoP: dpop });
const res = await fhir(`/fhir/Observation?patient=${tokens.patient}`, tokens.access_token, { 'MedMij-Request-ID': process.env.ZK_TRACE, 'X-Correlation-ID': 'pgo-corr-0001' });
out.searchStatus = res.status;
out.medmijEcho = res.headers.get('MedMij-Request-ID');
out.correlationEcho = res.headers.get('X-Correlation-ID');
const bundle = await res.json();
out.observations = (bundle.entry ?? []).filter((e) => e.resource?.resourceType === 'Observation').length;
const pat = await fhir(`/fhir/Patient/${tokens.patient}`, tokens.access_token, {});
out.patientStatus = pat.status;
// A DPoP-bound token used as a plain bearer token is refused.
out.bearerStatus = (await fetch(`${base}/fhir/Patient/${tokens.patient}`, { headers: { Authorization: `Bearer ${tokens.access_token}` } })).status;

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
out.rotated = refreshed.refresh_token !== tokens.refresh_token && refreshed.access_token !== tokens.access_token;
out.afterRefresh = await status(fhir(`/fhir/Patient/${tokens.patient}`, refreshed.access_token, {}));
await client.tokenRevocation(config, refreshed.refresh_token);
out.afterRevoke = await status(fhir(`/fhir/Patient/${tokens.patient}`, refreshed.access_token, {}));
console.log(JSON.stringify(out));
