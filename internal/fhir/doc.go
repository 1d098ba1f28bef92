// Package fhir owns the FHIR R4 JSON the server accepts and returns: which
// resource types it stores (the Basisgegevensset Zorg types, ResourceTypes),
// what it reads of them (Parse → Resource), what it rejects
// (*ValidationError, naming each offending element), the access category of
// each resource (Categories, AZ-9), and the resources it writes itself
// (OperationOutcome, Bundle, the id/meta rewrite of WithMeta, and the
// _elements/_summary subsets).
//
// It promises that a resource Parse accepts is kept byte for byte as
// submitted (Resource.Raw), unknown elements and extensions included, and
// that WithMeta changes only id, meta.versionId and meta.lastUpdated. It is
// pure: no database, no HTTP, no clock, no randomness.
//
// Validation covers the elements listed in spec.go, not whole R4
// StructureDefinitions: elements it does not know are preserved unchecked,
// and complex datatypes such as Quantity or Address are checked only for
// being objects.
package fhir
