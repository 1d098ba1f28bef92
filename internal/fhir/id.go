package fhir

// MediaType is the FHIR JSON media type the API serves.
const MediaType = "application/fhir+json; charset=utf-8"
