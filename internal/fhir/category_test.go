package fhir

import (
	"slices"
	"testing"
)

// REQ: AZ-9
func TestCategoriesByType(t *testing.T) {
	want := map[string]string{
		"Patient":             CategoryDemographics,
		"Practitioner":        CategoryDirectory,
		"PractitionerRole":    CategoryDirectory,
		"Organization":        CategoryDirectory,
		"Observation":         CategoryClinical,
		"Condition":           CategoryClinical,
		"Procedure":           CategoryClinical,
		"Encounter":           CategoryClinical,
		"Flag":                CategoryClinical,
		"AllergyIntolerance":  CategoryClinical,
		"Immunization":        CategoryClinical,
		"MedicationStatement": CategoryMedication,
		"MedicationRequest":   CategoryMedication,
		"Coverage":            CategoryAdministrative,
		"Consent":             CategoryAdministrative,
		"DocumentReference":   CategoryClinical,
	}
	if len(want) != len(ResourceTypes()) {
		t.Fatalf("table covers %d types, ResourceTypes has %d", len(want), len(ResourceTypes()))
	}
	for _, rt := range ResourceTypes() {
		res, err := Parse(mutateRaw(t, example(t, rt), func(m map[string]any) { delete(m, "meta") }))
		if err != nil {
			t.Fatal(err)
		}
		if got := Categories(res); !slices.Equal(got, []string{want[rt]}) {
			t.Errorf("%s: Categories = %v, want [%s]", rt, got, want[rt])
		}
	}
}

// REQ: AZ-9
func TestCategoriesFromSecurityLabels(t *testing.T) {
	label := func(system, code string) map[string]any { return map[string]any{"system": system, "code": code} }
	tests := []struct {
		name   string
		labels []any
		want   []string
	}{
		{"psychiatry", []any{label(SystemActCode, "PSY")}, []string{CategoryClinical, CategoryMentalHealth}},
		{"psychotherapy note", []any{label(SystemActCode, "PSYTHPN")}, []string{CategoryClinical, CategoryMentalHealth}},
		{"substance use", []any{label(SystemActCode, "ETH")}, []string{CategoryClinical, CategorySubstanceUse}},
		{"HIV", []any{label(SystemActCode, "HIV")}, []string{CategoryClinical, CategorySexualHealth}},
		{"sexual health", []any{label(SystemActCode, "SEX")}, []string{CategoryClinical, CategorySexualHealth}},
		{"domestic violence", []any{label(SystemActCode, "SDV")}, []string{CategoryClinical, CategoryDomesticViolence}},
		{"genetic", []any{label(SystemActCode, "GDIS")}, []string{CategoryClinical, CategoryGenetic}},
		{"restricted", []any{label(SystemConfidentiality, "R")}, []string{CategoryClinical, CategoryRestricted}},
		{"very restricted", []any{label(SystemConfidentiality, "V")}, []string{CategoryClinical, CategoryRestricted}},
		{"normal confidentiality", []any{label(SystemConfidentiality, "N")}, []string{CategoryClinical}},
		{"code without its system", []any{label("http://example.org/other", "PSY")}, []string{CategoryClinical}},
		{"several, repeated", []any{label(SystemActCode, "HIV"), label(SystemActCode, "PSY"), label(SystemActCode, "STD"), label(SystemConfidentiality, "R")},
			[]string{CategoryClinical, CategorySexualHealth, CategoryMentalHealth, CategoryRestricted}},
	}
	for _, tt := range tests {
		body := mutateRaw(t, example(t, "Condition"), func(m map[string]any) { m["meta"] = map[string]any{"security": tt.labels} })
		res, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if got := Categories(res); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Categories = %v, want %v", tt.name, got, tt.want)
		}
		for _, c := range Categories(res) {
			if !slices.Contains(AllCategories(), c) {
				t.Errorf("%s: category %q missing from AllCategories", tt.name, c)
			}
		}
	}
	// The DocumentReference example carries PSY.
	res, err := Parse(example(t, "DocumentReference"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Categories(res); !slices.Equal(got, []string{CategoryClinical, CategoryMentalHealth}) {
		t.Errorf("DocumentReference: %v", got)
	}
}

// REQ: AZ-9
func TestCategoriesFailClosed(t *testing.T) {
	for _, res := range []*Resource{nil, {Type: "Basic"}, {}} {
		if got := Categories(res); !slices.Equal(got, []string{CategoryRestricted}) {
			t.Errorf("Categories(%+v) = %v, want only restricted", res, got)
		}
	}
}
