// Drives zorgkluis with the npm fhir-kit-client, as a third-party FHIR
// client would: capability statement, create, read, search with paging,
// update with If-Match, the conditional errors, history, delete and
// $everything. It prints one JSON object of observations for the Go test
// (TestFHIRKitClient) to check; it asserts nothing itself.
import { Client } from 'fhir-kit-client';

const base = process.env.ZK_BASE + '/fhir';
const patient = process.env.ZK_PATIENT;
const client = new Client({ baseUrl: base, bearerToken: process.env.ZK_TOKEN });
const out = {};

async function failure(fn) {
  try {
    await fn();
    return { status: 'no error' };
  } catch (e) {
    const d = e.response?.data ?? {};
    return { status: e.response?.status, resourceType: d.resourceType, expression: d.issue?.[0]?.expression ?? [] };
  }
}

const obs = (value) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Lichaamslengte' }] },
  subject: { reference: `Patient/${patient}` },
  effectiveDateTime: '2026-02-01T09:30:00Z',
  valueQuantity: { value, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' },
});

const cs = await client.capabilityStatement();
out.fhirVersion = cs.fhirVersion;

const created = await client.create({ resourceType: 'Observation', body: obs(180) });
out.createdVersion = created.meta?.versionId;
const second = await client.create({ resourceType: 'Observation', body: obs(181) });
out.secondId = second.id;

const read = await client.read({ resourceType: 'Observation', id: created.id });
out.readValue = read.valueQuantity?.value;

const found = await client.search({ resourceType: 'Observation', searchParams: { patient, code: 'http://loinc.org|8302-2', _count: 1 } });
out.searchTotal = found.total;
out.searchPage1 = found.entry?.length ?? 0;
const page2 = await client.nextPage({ bundle: found });
out.searchPage2Id = page2?.entry?.[0]?.resource?.id;
out.searchPage1Id = found.entry?.[0]?.resource?.id;

read.valueQuantity.value = 182;
const updated = await client.update({ resourceType: 'Observation', id: created.id, body: read, options: { headers: { 'If-Match': 'W/"1"' } } });
out.updatedVersion = updated.meta?.versionId;
out.updatedValue = updated.valueQuantity?.value;

// Conditional errors: a stale If-Match, a stale meta.versionId, an unknown
// id, an invalid resource, another patient's subject on update.
out.staleIfMatch = await failure(() =>
  client.update({ resourceType: 'Observation', id: created.id, body: read, options: { headers: { 'If-Match': 'W/"1"' } } }));
out.staleVersionId = await failure(() => client.update({ resourceType: 'Observation', id: created.id, body: read }));
out.notFound = await failure(() => client.read({ resourceType: 'Observation', id: 'r-doesnotexist' }));
out.invalid = await failure(() => client.create({ resourceType: 'Observation', body: { ...obs(1), status: 'bogus' } }));
out.otherPatient = await failure(() =>
  client.update({ resourceType: 'Observation', id: created.id, body: { ...obs(1), id: created.id, subject: { reference: 'Patient/p-someoneelse' } } }));

const history = await client.history({ resourceType: 'Observation', id: created.id });
out.historyTotal = history.total;
const v1 = await client.vread({ resourceType: 'Observation', id: created.id, version: '1' });
out.vreadValue = v1.valueQuantity?.value;

await client.delete({ resourceType: 'Observation', id: second.id });
out.afterDelete = await failure(() => client.read({ resourceType: 'Observation', id: second.id }));

const everything = await client.operation({ name: 'everything', resourceType: 'Patient', id: patient, method: 'GET' });
out.everythingType = everything.type;
out.everythingHasCreated = (everything.entry ?? []).some((e) => e.resource?.id === created.id);

console.log(JSON.stringify(out));
