package fhir

// This file describes, as data, the part of FHIR R4 the server checks: for
// each supported resource type the elements it knows, their datatype, whether
// they repeat, and which are required. Elements not listed are kept as
// submitted without checks.
//
// Required elements (minimum cardinality 1 in the R4 definitions; nested
// required elements of listed backbone elements are checked too):
//
//	Patient            –
//	Practitioner       –
//	PractitionerRole   –
//	Organization       –
//	Observation        status, code                       (component.code)
//	Condition          subject
//	AllergyIntolerance patient                            (reaction.manifestation)
//	MedicationStatement status, medication[x], subject
//	MedicationRequest  status, intent, medication[x], subject
//	Immunization       status, vaccineCode, patient, occurrence[x] (performer.actor)
//	Procedure          status, subject                    (performer.actor)
//	Encounter          status, class                      (diagnosis.condition)
//	Flag               status, code, subject
//	Consent            status, scope, category
//	Coverage           status, beneficiary, payor
//	DocumentReference  status, content                    (content.attachment, relatesTo.code/target)
//
// Beyond R4, this server's profile: the element naming the patient
// (subject, patient or beneficiary; see typeSpec.patient) may only reference
// a Patient, as a relative reference "Patient/{id}", because every clinical
// resource lives in exactly one patient's record.

// kind is the datatype of an element.
type kind uint8

const (
	kString    kind = iota // string, markdown, uri, url, canonical, oid, uuid: a non-empty string
	kCode                  // code: no leading, trailing or double whitespace
	kID                    // id
	kBool                  // boolean
	kInteger               // integer, positiveInt, unsignedInt
	kDate                  // date
	kDateTime              // dateTime
	kInstant               // instant
	kTime                  // time
	kObject                // a complex type checked only for being a non-empty object
	kBackbone              // a backbone element with its own element list
	kContained             // a contained resource
	kCoding
	kCodeableConcept
	kIdentifier
	kReference
	kPeriod
	kHumanName
	kMeta
	kExtension
)

// primitive reports whether k is a JSON primitive in FHIR.
func (k kind) primitive() bool { return k <= kTime }

// element describes one element of a resource or datatype.
type element struct {
	name    string
	kind    kind
	many    bool      // a JSON array
	min1    bool      // required (minimum cardinality 1)
	codes   []string  // the required value set of a code
	target  string    // for references: the only resource type allowed
	sub     []element // for backbone elements
	choices []choice  // for choice elements name[x]: the allowed types
}

// choice is one type of a choice element: name + suffix, e.g. effectiveDateTime.
type choice struct {
	suffix string
	kind   kind
}

func one(name string, k kind) element  { return element{name: name, kind: k} }
func list(name string, k kind) element { return element{name: name, kind: k, many: true} }

func (e element) required() element { e.min1 = true; return e }

func (e element) of(codes ...string) element { e.codes = codes; return e }

func (e element) to(target string) element { e.target = target; return e }

func backbone(name string, many bool, sub ...element) element {
	return element{name: name, kind: kBackbone, many: many, sub: sub}
}

func choiceOf(name string, cs ...choice) element {
	return element{name: name, choices: cs}
}

// Choice types by their suffix.
var (
	cDateTime        = choice{"DateTime", kDateTime}
	cPeriod          = choice{"Period", kPeriod}
	cInstant         = choice{"Instant", kInstant}
	cTiming          = choice{"Timing", kObject}
	cString          = choice{"String", kString}
	cBoolean         = choice{"Boolean", kBool}
	cInteger         = choice{"Integer", kInteger}
	cTime            = choice{"Time", kTime}
	cQuantity        = choice{"Quantity", kObject}
	cAge             = choice{"Age", kObject}
	cRange           = choice{"Range", kObject}
	cRatio           = choice{"Ratio", kObject}
	cSampledData     = choice{"SampledData", kObject}
	cAttachment      = choice{"Attachment", kObject}
	cCodeableConcept = choice{"CodeableConcept", kCodeableConcept}
	cReference       = choice{"Reference", kReference}
)

// Datatypes.
var (
	codingElements = []element{
		one("system", kString), one("version", kString), one("code", kCode),
		one("display", kString), one("userSelected", kBool),
	}
	codeableConceptElements = []element{list("coding", kCoding), one("text", kString)}
	identifierElements      = []element{
		one("use", kCode).of("usual", "official", "temp", "secondary", "old"),
		one("type", kCodeableConcept), one("system", kString), one("value", kString),
		one("period", kPeriod), one("assigner", kReference),
	}
	referenceElements = []element{
		one("reference", kString), one("type", kString), one("identifier", kIdentifier), one("display", kString),
	}
	periodElements    = []element{one("start", kDateTime), one("end", kDateTime)}
	humanNameElements = []element{
		one("use", kCode).of("usual", "official", "temp", "nickname", "anonymous", "old", "maiden"),
		one("text", kString), one("family", kString), list("given", kString),
		list("prefix", kString), list("suffix", kString), one("period", kPeriod),
	}
	metaElements = []element{
		one("versionId", kID), one("lastUpdated", kInstant), one("source", kString),
		list("profile", kString), list("security", kCoding), list("tag", kCoding),
	}
	extensionElements = []element{one("url", kString).required(), list("extension", kExtension)}
)

// elementsOf returns the element list of a complex datatype.
func elementsOf(k kind) []element {
	switch k {
	case kCoding:
		return codingElements
	case kCodeableConcept:
		return codeableConceptElements
	case kIdentifier:
		return identifierElements
	case kReference:
		return referenceElements
	case kPeriod:
		return periodElements
	case kHumanName:
		return humanNameElements
	case kMeta:
		return metaElements
	case kExtension:
		return extensionElements
	}
	return nil
}

// Elements every resource has (Resource and DomainResource).
var domainResourceElements = []element{
	one("id", kID), one("meta", kMeta), one("implicitRules", kString), one("language", kCode),
	one("text", kObject), list("contained", kContained),
	list("extension", kExtension), list("modifierExtension", kExtension),
}

// typeSpec is what the server knows of one resource type.
type typeSpec struct {
	name     string
	group    string // the access category (AZ-9), see Categories
	elements []element
	patient  string   // the element naming the patient the resource belongs to
	code     string   // the CodeableConcept searched by "code"
	category string   // the element searched by "category"
	dates    []string // the elements searched by "date", first present wins
	dateDoc  string   // the same, for the CapabilityStatement
}

// element returns the spec of a top-level element or choice base.
func (s *typeSpec) element(name string) *element {
	for i := range s.elements {
		if s.elements[i].name == name {
			return &s.elements[i]
		}
	}
	return nil
}

// choiceBase returns the base name of a choice element (e.g. "effective"
// for "effectiveDateTime") and its choice, or ok false when name is not a
// choice element of this type.
func (s *typeSpec) choiceBase(name string) (base string, c choice, ok bool) {
	for _, e := range s.elements {
		for _, c := range e.choices {
			if len(name) == len(e.name)+len(c.suffix) && name[:len(e.name)] == e.name && name[len(e.name):] == c.suffix {
				return e.name, c, true
			}
		}
	}
	return "", choice{}, false
}

var (
	genders = []string{"male", "female", "other", "unknown"}
	// Observation.value[x] and Observation.component.value[x].
	observationValue = choiceOf("value", cQuantity, cCodeableConcept, cString, cBoolean, cInteger,
		cRange, cRatio, cSampledData, cTime, cDateTime, cPeriod)
	// Condition.onset[x] and AllergyIntolerance.onset[x].
	onset = choiceOf("onset", cDateTime, cAge, cPeriod, cRange, cString)
)

// specs holds every supported resource type. It is built once and never
// changed.
var specs = buildSpecs()

func buildSpecs() map[string]*typeSpec {
	all := []*typeSpec{
		{
			name: "Patient", group: CategoryDemographics,
			elements: []element{
				list("identifier", kIdentifier), one("active", kBool), list("name", kHumanName),
				list("telecom", kObject), one("gender", kCode).of(genders...), one("birthDate", kDate),
				choiceOf("deceased", cBoolean, cDateTime), list("address", kObject),
				one("maritalStatus", kCodeableConcept), choiceOf("multipleBirth", cBoolean, cInteger),
				list("photo", kObject),
				backbone("contact", true, list("relationship", kCodeableConcept), one("name", kHumanName),
					list("telecom", kObject), one("address", kObject), one("gender", kCode).of(genders...),
					one("organization", kReference), one("period", kPeriod)),
				backbone("communication", true, one("language", kCodeableConcept).required(), one("preferred", kBool)),
				list("generalPractitioner", kReference), one("managingOrganization", kReference),
				backbone("link", true, one("other", kReference).required(),
					one("type", kCode).required().of("replaced-by", "replaces", "refer", "seealso")),
			},
		},
		{
			name: "Practitioner", group: CategoryDirectory,
			elements: []element{
				list("identifier", kIdentifier), one("active", kBool), list("name", kHumanName),
				list("telecom", kObject), list("address", kObject), one("gender", kCode).of(genders...),
				one("birthDate", kDate), list("photo", kObject),
				backbone("qualification", true, list("identifier", kIdentifier),
					one("code", kCodeableConcept).required(), one("period", kPeriod), one("issuer", kReference)),
				list("communication", kCodeableConcept),
			},
		},
		{
			name: "PractitionerRole", group: CategoryDirectory,
			elements: []element{
				list("identifier", kIdentifier), one("active", kBool), one("period", kPeriod),
				one("practitioner", kReference), one("organization", kReference),
				list("code", kCodeableConcept), list("specialty", kCodeableConcept),
				list("location", kReference), list("healthcareService", kReference),
				list("telecom", kObject), list("availableTime", kObject), list("notAvailable", kObject),
				one("availabilityExceptions", kString), list("endpoint", kReference),
			},
		},
		{
			name: "Organization", group: CategoryDirectory,
			elements: []element{
				list("identifier", kIdentifier), one("active", kBool), list("type", kCodeableConcept),
				one("name", kString), list("alias", kString), list("telecom", kObject),
				list("address", kObject), one("partOf", kReference), list("contact", kObject),
				list("endpoint", kReference),
			},
		},
		{
			name: "Observation", group: CategoryClinical,
			patient: "subject", code: "code", category: "category",
			dates:   []string{"effectiveDateTime", "effectivePeriod", "effectiveInstant"},
			dateDoc: "Observation.effective[x] (dateTime, Period, instant)",
			elements: []element{
				list("identifier", kIdentifier), list("basedOn", kReference), list("partOf", kReference),
				one("status", kCode).required().of("registered", "preliminary", "final", "amended",
					"corrected", "cancelled", "entered-in-error", "unknown"),
				list("category", kCodeableConcept), one("code", kCodeableConcept).required(),
				one("subject", kReference).to("Patient"), list("focus", kReference),
				one("encounter", kReference),
				choiceOf("effective", cDateTime, cPeriod, cTiming, cInstant),
				one("issued", kInstant), list("performer", kReference), observationValue,
				one("dataAbsentReason", kCodeableConcept), list("interpretation", kCodeableConcept),
				list("note", kObject), one("bodySite", kCodeableConcept), one("method", kCodeableConcept),
				one("specimen", kReference), one("device", kReference), list("referenceRange", kObject),
				list("hasMember", kReference), list("derivedFrom", kReference),
				backbone("component", true, one("code", kCodeableConcept).required(), observationValue,
					one("dataAbsentReason", kCodeableConcept), list("interpretation", kCodeableConcept),
					list("referenceRange", kObject)),
			},
		},
		{
			name: "Condition", group: CategoryClinical,
			patient: "subject", code: "code", category: "category",
			dates:   []string{"onsetDateTime", "onsetPeriod", "recordedDate"},
			dateDoc: "Condition.onset[x] (dateTime, Period), else Condition.recordedDate",
			elements: []element{
				list("identifier", kIdentifier), one("clinicalStatus", kCodeableConcept),
				one("verificationStatus", kCodeableConcept), list("category", kCodeableConcept),
				one("severity", kCodeableConcept), one("code", kCodeableConcept),
				list("bodySite", kCodeableConcept), one("subject", kReference).required().to("Patient"),
				one("encounter", kReference), onset,
				choiceOf("abatement", cDateTime, cAge, cPeriod, cRange, cString),
				one("recordedDate", kDateTime), one("recorder", kReference), one("asserter", kReference),
				list("stage", kObject), list("evidence", kObject), list("note", kObject),
			},
		},
		{
			name: "AllergyIntolerance", group: CategoryClinical,
			patient: "patient", code: "code", category: "category",
			dates:   []string{"recordedDate", "onsetDateTime", "onsetPeriod"},
			dateDoc: "AllergyIntolerance.recordedDate, else AllergyIntolerance.onset[x] (dateTime, Period)",
			elements: []element{
				list("identifier", kIdentifier), one("clinicalStatus", kCodeableConcept),
				one("verificationStatus", kCodeableConcept), one("type", kCode).of("allergy", "intolerance"),
				list("category", kCode).of("food", "medication", "environment", "biologic"),
				one("criticality", kCode).of("low", "high", "unable-to-assess"),
				one("code", kCodeableConcept), one("patient", kReference).required().to("Patient"),
				one("encounter", kReference), onset, one("recordedDate", kDateTime),
				one("recorder", kReference), one("asserter", kReference), one("lastOccurrence", kDateTime),
				list("note", kObject),
				backbone("reaction", true, one("substance", kCodeableConcept),
					list("manifestation", kCodeableConcept).required(), one("description", kString),
					one("onset", kDateTime), one("severity", kCode).of("mild", "moderate", "severe"),
					one("exposureRoute", kCodeableConcept), list("note", kObject)),
			},
		},
		{
			name: "MedicationStatement", group: CategoryMedication,
			patient: "subject", code: "medicationCodeableConcept", category: "category",
			dates:   []string{"effectiveDateTime", "effectivePeriod"},
			dateDoc: "MedicationStatement.effective[x] (dateTime, Period)",
			elements: []element{
				list("identifier", kIdentifier), list("basedOn", kReference), list("partOf", kReference),
				one("status", kCode).required().of("active", "completed", "entered-in-error", "intended",
					"stopped", "on-hold", "unknown", "not-taken"),
				list("statusReason", kCodeableConcept), one("category", kCodeableConcept),
				choiceOf("medication", cCodeableConcept, cReference).required(),
				one("subject", kReference).required().to("Patient"), one("context", kReference),
				choiceOf("effective", cDateTime, cPeriod), one("dateAsserted", kDateTime),
				one("informationSource", kReference), list("derivedFrom", kReference),
				list("reasonCode", kCodeableConcept), list("reasonReference", kReference),
				list("note", kObject), list("dosage", kObject),
			},
		},
		{
			name: "MedicationRequest", group: CategoryMedication,
			patient: "subject", code: "medicationCodeableConcept", category: "category",
			dates:   []string{"authoredOn"},
			dateDoc: "MedicationRequest.authoredOn",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("active", "on-hold", "cancelled", "completed",
					"entered-in-error", "stopped", "draft", "unknown"),
				one("statusReason", kCodeableConcept),
				one("intent", kCode).required().of("proposal", "plan", "order", "original-order",
					"reflex-order", "filler-order", "instance-order", "option"),
				list("category", kCodeableConcept), one("priority", kCode).of("routine", "urgent", "asap", "stat"),
				one("doNotPerform", kBool), choiceOf("reported", cBoolean, cReference),
				choiceOf("medication", cCodeableConcept, cReference).required(),
				one("subject", kReference).required().to("Patient"), one("encounter", kReference),
				list("supportingInformation", kReference), one("authoredOn", kDateTime),
				one("requester", kReference), one("performer", kReference),
				one("performerType", kCodeableConcept), one("recorder", kReference),
				list("reasonCode", kCodeableConcept), list("reasonReference", kReference),
				list("instantiatesCanonical", kString), list("instantiatesUri", kString),
				list("basedOn", kReference), one("groupIdentifier", kIdentifier),
				one("courseOfTherapyType", kCodeableConcept), list("insurance", kReference),
				list("note", kObject), list("dosageInstruction", kObject), one("dispenseRequest", kObject),
				one("substitution", kObject), one("priorPrescription", kReference),
				list("detectedIssue", kReference), list("eventHistory", kReference),
			},
		},
		{
			name: "Immunization", group: CategoryClinical,
			patient: "patient",
			dates:   []string{"occurrenceDateTime"},
			dateDoc: "Immunization.occurrence[x] (dateTime)",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("completed", "entered-in-error", "not-done"),
				one("statusReason", kCodeableConcept), one("vaccineCode", kCodeableConcept).required(),
				one("patient", kReference).required().to("Patient"), one("encounter", kReference),
				choiceOf("occurrence", cDateTime, cString).required(),
				one("recorded", kDateTime), one("primarySource", kBool),
				one("reportOrigin", kCodeableConcept), one("location", kReference),
				one("manufacturer", kReference), one("lotNumber", kString), one("expirationDate", kDate),
				one("site", kCodeableConcept), one("route", kCodeableConcept), one("doseQuantity", kObject),
				backbone("performer", true, one("function", kCodeableConcept), one("actor", kReference).required()),
				list("note", kObject), list("reasonCode", kCodeableConcept), list("reasonReference", kReference),
				one("isSubpotent", kBool), list("subpotentReason", kCodeableConcept),
				list("education", kObject), list("programEligibility", kCodeableConcept),
				one("fundingSource", kCodeableConcept),
				backbone("reaction", true, one("date", kDateTime), one("detail", kReference), one("reported", kBool)),
				list("protocolApplied", kObject),
			},
		},
		{
			name: "Procedure", group: CategoryClinical,
			patient: "subject", code: "code", category: "category",
			dates:   []string{"performedDateTime", "performedPeriod"},
			dateDoc: "Procedure.performed[x] (dateTime, Period)",
			elements: []element{
				list("identifier", kIdentifier), list("instantiatesCanonical", kString),
				list("instantiatesUri", kString), list("basedOn", kReference), list("partOf", kReference),
				one("status", kCode).required().of("preparation", "in-progress", "not-done", "on-hold",
					"stopped", "completed", "entered-in-error", "unknown"),
				one("statusReason", kCodeableConcept), one("category", kCodeableConcept),
				one("code", kCodeableConcept), one("subject", kReference).required().to("Patient"),
				one("encounter", kReference),
				choiceOf("performed", cDateTime, cPeriod, cString, cAge, cRange),
				one("recorder", kReference), one("asserter", kReference),
				backbone("performer", true, one("function", kCodeableConcept),
					one("actor", kReference).required(), one("onBehalfOf", kReference)),
				one("location", kReference), list("reasonCode", kCodeableConcept),
				list("reasonReference", kReference), list("bodySite", kCodeableConcept),
				one("outcome", kCodeableConcept), list("report", kReference),
				list("complication", kCodeableConcept), list("complicationDetail", kReference),
				list("followUp", kCodeableConcept), list("note", kObject), list("focalDevice", kObject),
				list("usedReference", kReference), list("usedCode", kCodeableConcept),
			},
		},
		{
			name: "Encounter", group: CategoryClinical,
			patient: "subject",
			dates:   []string{"period"},
			dateDoc: "Encounter.period",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("planned", "arrived", "triaged", "in-progress",
					"onleave", "finished", "cancelled", "entered-in-error", "unknown"),
				list("statusHistory", kObject), one("class", kCoding).required(), list("classHistory", kObject),
				list("type", kCodeableConcept), one("serviceType", kCodeableConcept),
				one("priority", kCodeableConcept), one("subject", kReference).to("Patient"),
				list("episodeOfCare", kReference), list("basedOn", kReference), list("participant", kObject),
				list("appointment", kReference), one("period", kPeriod), one("length", kObject),
				list("reasonCode", kCodeableConcept), list("reasonReference", kReference),
				backbone("diagnosis", true, one("condition", kReference).required(),
					one("use", kCodeableConcept), one("rank", kInteger)),
				list("account", kReference), one("hospitalization", kObject), list("location", kObject),
				one("serviceProvider", kReference), one("partOf", kReference),
			},
		},
		{
			name: "Flag", group: CategoryClinical,
			patient: "subject", category: "category",
			dates:   []string{"period"},
			dateDoc: "Flag.period",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("active", "inactive", "entered-in-error"),
				list("category", kCodeableConcept), one("code", kCodeableConcept).required(),
				one("subject", kReference).required().to("Patient"), one("period", kPeriod),
				one("encounter", kReference), one("author", kReference),
			},
		},
		{
			name: "Consent", group: CategoryAdministrative,
			patient: "patient", category: "category",
			dates:   []string{"dateTime"},
			dateDoc: "Consent.dateTime",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("draft", "proposed", "active", "rejected", "inactive", "entered-in-error"),
				one("scope", kCodeableConcept).required(), list("category", kCodeableConcept).required(),
				one("patient", kReference).to("Patient"), one("dateTime", kDateTime),
				list("performer", kReference), list("organization", kReference),
				choiceOf("source", cAttachment, cReference), list("policy", kObject),
				one("policyRule", kCodeableConcept), list("verification", kObject), one("provision", kObject),
			},
		},
		{
			name: "Coverage", group: CategoryAdministrative,
			patient: "beneficiary",
			elements: []element{
				list("identifier", kIdentifier),
				one("status", kCode).required().of("active", "cancelled", "draft", "entered-in-error"),
				one("type", kCodeableConcept), one("policyHolder", kReference), one("subscriber", kReference),
				one("subscriberId", kString), one("beneficiary", kReference).required().to("Patient"),
				one("dependent", kString), one("relationship", kCodeableConcept), one("period", kPeriod),
				list("payor", kReference).required(), list("class", kObject), one("order", kInteger),
				one("network", kString), list("costToBeneficiary", kObject), one("subrogation", kBool),
				list("contract", kReference),
			},
		},
		{
			name: "DocumentReference", group: CategoryClinical,
			patient: "subject", category: "category",
			dates:   []string{"date"},
			dateDoc: "DocumentReference.date",
			elements: []element{
				one("masterIdentifier", kIdentifier), list("identifier", kIdentifier),
				one("status", kCode).required().of("current", "superseded", "entered-in-error"),
				one("docStatus", kCode).of("preliminary", "final", "amended", "entered-in-error"),
				one("type", kCodeableConcept), list("category", kCodeableConcept),
				one("subject", kReference).to("Patient"), one("date", kInstant), list("author", kReference),
				one("authenticator", kReference), one("custodian", kReference),
				backbone("relatesTo", true,
					one("code", kCode).required().of("replaces", "transforms", "signs", "appends"),
					one("target", kReference).required()),
				one("description", kString), list("securityLabel", kCodeableConcept),
				backbone("content", true, one("attachment", kObject).required(), one("format", kCoding)).required(),
				one("context", kObject),
			},
		},
	}
	m := make(map[string]*typeSpec, len(all))
	for _, s := range all {
		s.elements = append(append([]element(nil), domainResourceElements...), s.elements...)
		m[s.name] = s
	}
	return m
}
