package fhir

// Access categories (AZ-9). Policy grants a role a set of categories; a role
// may see a resource only when it holds every category Categories returns.
//
// Every resource has exactly one general category, from its type:
//
//	demographics    Patient
//	directory       Practitioner, PractitionerRole, Organization (not health data)
//	clinical        Observation, Condition, Procedure, Encounter, Flag,
//	                AllergyIntolerance, Immunization, DocumentReference
//	medication      MedicationStatement, MedicationRequest
//	administrative  Coverage, Consent
//
// DocumentReference counts as clinical because the documents it points to
// (letters, reports) usually are.
//
// A resource has, in addition, a sensitive category for each security label
// in meta.security that names one. Only these labels count, matched on
// system and code; the content of the resource (a diagnosis code, say) is
// never inspected, so the author labels sensitive data explicitly:
//
//	mental-health      v3-ActCode PSY, PSYTHPN, BH
//	substance-use      v3-ActCode ETH, ETHUD, OPIOIDUD
//	sexual-health      v3-ActCode HIV, STD, SEX
//	domestic-violence  v3-ActCode SDV
//	genetic            v3-ActCode GDIS
//	restricted         v3-Confidentiality R, V
//
// (v3-ActCode is http://terminology.hl7.org/CodeSystem/v3-ActCode,
// v3-Confidentiality is http://terminology.hl7.org/CodeSystem/v3-Confidentiality.)
const (
	CategoryDemographics   = "demographics"
	CategoryDirectory      = "directory"
	CategoryClinical       = "clinical"
	CategoryMedication     = "medication"
	CategoryAdministrative = "administrative"

	CategoryMentalHealth     = "mental-health"
	CategorySubstanceUse     = "substance-use"
	CategorySexualHealth     = "sexual-health"
	CategoryDomesticViolence = "domestic-violence"
	CategoryGenetic          = "genetic"
	CategoryRestricted       = "restricted"
)

const (
	SystemActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	SystemConfidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
)

// sensitive maps a security label to its category.
func sensitive(c Coding) string {
	switch c.System {
	case SystemActCode:
		switch c.Code {
		case "PSY", "PSYTHPN", "BH":
			return CategoryMentalHealth
		case "ETH", "ETHUD", "OPIOIDUD":
			return CategorySubstanceUse
		case "HIV", "STD", "SEX":
			return CategorySexualHealth
		case "SDV":
			return CategoryDomesticViolence
		case "GDIS":
			return CategoryGenetic
		}
	case SystemConfidentiality:
		switch c.Code {
		case "R", "V":
			return CategoryRestricted
		}
	}
	return ""
}

// Categories returns the access categories of res: its general category
// first, then its sensitive ones in the order of its labels, each once.
// A resource of a type this package does not know gets only
// CategoryRestricted, so that policy fails closed.
func Categories(res *Resource) []string {
	if res == nil || specs[res.Type] == nil {
		return []string{CategoryRestricted}
	}
	out := []string{specs[res.Type].group}
	for _, label := range res.Meta.Security {
		if c := sensitive(label); c != "" && !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// AllCategories lists every category Categories can return, general ones
// first, for policy editors and validation of policy configuration.
func AllCategories() []string {
	return []string{
		CategoryDemographics, CategoryDirectory, CategoryClinical, CategoryMedication, CategoryAdministrative,
		CategoryMentalHealth, CategorySubstanceUse, CategorySexualHealth, CategoryDomesticViolence,
		CategoryGenetic, CategoryRestricted,
	}
}
