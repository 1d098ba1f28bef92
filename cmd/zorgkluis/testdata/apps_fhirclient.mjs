// A SMART on FHIR app with fhirclient (SMART client-js, npm), a client
// nobody here wrote: standalone launch against the FHIR base, which it
// discovers through /fhir/.well-known/smart-configuration, as a public
// client with PKCE; after the person's consent (in the Go test) it reads
// the person's Observations. It runs the app's two pages on a loopback
// port: /launch sends the browser to the server, /callback finishes and
// answers with what it read.
import http from 'node:http';
import smart from 'fhirclient';

const memory = new Map();
const storage = {
  async get(k) { return memory.get(k); },
  async set(k, v) { memory.set(k, v); return v; },
  async unset(k) { return memory.delete(k); },
};

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://' + req.headers.host);
    if (url.pathname === '/launch') {
      await smart(req, res, storage).authorize({
        iss: process.env.ZK_BASE + '/fhir',
        clientId: url.searchParams.get('client_id'),
        scope: 'launch/patient patient/Observation.rs',
        redirectUri: '/callback',
        pkceMode: 'required',
      });
      return;
    }
    if (url.pathname === '/callback') {
      const client = await smart(req, res, storage).ready();
      const bundle = await client.request('Observation?patient=' + client.patient.id);
      const out = {
        patient: client.patient.id,
        observations: (bundle.entry || []).filter((e) => e.resource && e.resource.resourceType === 'Observation').length,
        scope: client.state.tokenResponse.scope,
      };
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(out));
      server.close();
      return;
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(String(e && e.stack || e));
    server.close();
  }
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
setTimeout(() => { server.close(); process.exit(3); }, 120000).unref();
