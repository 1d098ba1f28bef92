// Interoperability with npm jose and canonicalize (RFC 8785), which nobody
// here wrote: "verify FILE" checks a zorgkluis-signed Bundle; "sign FILE KEY
// X5C" signs a Bundle the same way (detached JWS, ES256, kid = serial,
// x5c) and prints it.
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import canonicalize from 'canonicalize';

const [mode, file, keyFile, x5cFile, kid] = process.argv.slice(2);
const bundle = JSON.parse(readFileSync(file, 'utf8'));
const { signature, ...rest } = bundle;
const payload = new TextEncoder().encode(canonicalize(rest));

if (mode === 'verify') {
  const jws = Buffer.from(signature.data, 'base64').toString();
  const [protectedHeader, , sig] = jws.split('.');
  const header = jose.decodeProtectedHeader(jws);
  const pem = `-----BEGIN CERTIFICATE-----\n${header.x5c[0]}\n-----END CERTIFICATE-----`;
  const key = await jose.importX509(pem, 'ES256');
  const { protectedHeader: h } = await jose.flattenedVerify(
    { protected: protectedHeader, payload: jose.base64url.encode(payload), signature: sig }, key, { algorithms: ['ES256'] });
  console.log(JSON.stringify({ ok: true, kid: h.kid, alg: h.alg }));
} else if (mode === 'sign') {
  const key = await jose.importPKCS8(readFileSync(keyFile, 'utf8'), 'ES256');
  const x5c = JSON.parse(readFileSync(x5cFile, 'utf8'));
  const compact = await new jose.CompactSign(payload).setProtectedHeader({ alg: 'ES256', kid, x5c }).sign(key);
  const [h, , s] = compact.split('.');
  rest.signature = {
    type: [{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1' }],
    when: new Date().toISOString(), who: { display: 'lab via npm jose' }, sigFormat: 'application/jose',
    data: Buffer.from(`${h}..${s}`).toString('base64'),
  };
  console.log(JSON.stringify(rest));
} else {
  throw new Error('mode: verify or sign');
}
