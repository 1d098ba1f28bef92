package fhirapi

import _ "example.org/zk/internal/mgmtapi"
