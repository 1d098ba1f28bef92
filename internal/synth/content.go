package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

// Person is the synthetic identity of one patient.
type Person struct {
	BSN        string
	Given      string
	Family     string // with its tussenvoegsel, as written: "van der Meer"
	Gender     string // FHIR administrative gender: female or male
	BirthDate  string // YYYY-MM-DD
	Street     string
	HouseNr    int
	PostalCode string
	City       string
}

// Name is the full name as it is written.
func (p Person) Name() string { return p.Given + " " + p.Family }

// Measurement is one synthetic Observation value.
type Measurement struct {
	Code     string // LOINC
	Display  string
	Unit     string // UCUM
	Category string // observation-category: vital-signs or laboratory
	Value    float64
	DaysAgo  int
}

// Source draws synthetic content. The same seed gives the same sequence of
// people and measurements, so a data set can be rebuilt and compared. A
// Source is not safe for concurrent use: Generate draws from one goroutine.
type Source struct {
	rng   *rand.Rand
	bytes *rand.ChaCha8
	seen  map[string]bool // BSNs handed out, so that each is unique
}

// NewSource returns a Source seeded with seed.
func NewSource(seed uint64) *Source {
	var k [32]byte
	for i := range 4 {
		for j := range 8 {
			k[i*8+j] = byte((seed + uint64(i)*0x9e3779b97f4a7c15) >> (8 * j))
		}
	}
	return &Source{rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), bytes: rand.NewChaCha8(k), seen: map[string]bool{}}
}

var (
	femaleNames = []string{"Emma", "Julia", "Sophie", "Anna", "Tess", "Saar", "Fenna", "Lotte", "Sanne", "Iris", "Eva", "Lisa",
		"Maria", "Johanna", "Cornelia", "Wilhelmina", "Anneke", "Ingrid", "Marieke", "Els", "Fatima", "Yasmina", "Noor", "Mila"}
	maleNames = []string{"Daan", "Sem", "Lucas", "Levi", "Finn", "Noah", "Bram", "Thijs", "Jesse", "Ruben", "Lars", "Sven",
		"Johannes", "Cornelis", "Hendrik", "Willem", "Pieter", "Jan", "Kees", "Gerrit", "Mohammed", "Youssef", "Ahmet", "Mees"}
	familyNames = []string{"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
		"Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer",
		"de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen",
		"van den Heuvel", "van der Veen", "van den Broek", "de Bruijn", "van der Heijden", "Schouten", "van Beek", "Willems",
		"van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "van der Wal", "Prins", "Blom",
		"Huisman", "Kuipers", "Yilmaz", "El Amrani", "Kramer", "Postma"}
	streets = []string{"Dorpsstraat", "Kerkstraat", "Schoolstraat", "Molenweg", "Stationsweg", "Julianastraat", "Beatrixlaan",
		"Wilhelminastraat", "Nieuwstraat", "Parallelweg", "Hoofdstraat", "Lindelaan", "Eikenlaan", "Sportlaan"}
	cities = []struct {
		name   string
		prefix int // first two digits of its postcodes
	}{{"Amsterdam", 10}, {"Rotterdam", 30}, {"Den Haag", 25}, {"Utrecht", 35}, {"Eindhoven", 56}, {"Groningen", 97},
		{"Tilburg", 50}, {"Almere", 13}, {"Breda", 48}, {"Nijmegen", 65}, {"Zwolle", 80}, {"Leeuwarden", 89},
		{"Maastricht", 62}, {"Amersfoort", 38}, {"Deventer", 74}, {"Middelburg", 43}}
)

// postcode letters never use F, I, O, Q, U or Y, and SA, SD, SS are not issued.
const postcodeLetters = "ABCEGHJKLMNPRSTVWXZ"

// Person draws a new patient with a BSN no earlier draw of this Source gave.
func (s *Source) Person(now time.Time) (Person, error) {
	var bsn string
	for {
		b, err := nlid.GenerateBSN(s.bytes)
		if err != nil {
			return Person{}, fmt.Errorf("synth: %w", err)
		}
		if !s.seen[b] {
			s.seen[b] = true
			bsn = b
			break
		}
	}
	p := Person{BSN: bsn, Family: pick(s.rng, familyNames), Street: pick(s.rng, streets), HouseNr: 1 + s.rng.IntN(180)}
	if s.rng.IntN(2) == 0 {
		p.Gender, p.Given = "female", pick(s.rng, femaleNames)
	} else {
		p.Gender, p.Given = "male", pick(s.rng, maleNames)
	}
	// Ages 0..95, weighted towards adults as in a GP list.
	age := s.rng.IntN(96)
	if age < 18 && s.rng.IntN(2) == 0 {
		age += 30
	}
	born := now.AddDate(-age, 0, -s.rng.IntN(365))
	p.BirthDate = born.Format("2006-01-02")
	c := cities[s.rng.IntN(len(cities))]
	p.City = c.name
	l := postcodeLetters
	p.PostalCode = fmt.Sprintf("%02d%02d %c%c", c.prefix, s.rng.IntN(100), l[s.rng.IntN(len(l))], l[s.rng.IntN(len(l))])
	return p, nil
}

// measure describes a plausible distribution of one LOINC-coded value.
type measure struct {
	code, display, unit, category string
	mean, sd, min, max            float64
	decimals                      int
}

// measures are vital signs and laboratory values with Dutch (SI) units.
var measures = []measure{
	{"29463-7", "Lichaamsgewicht", "kg", "vital-signs", 78, 15, 3, 200, 1},
	{"8302-2", "Lichaamslengte", "cm", "vital-signs", 174, 10, 50, 210, 0},
	{"39156-5", "Body mass index", "kg/m2", "vital-signs", 26, 4, 14, 50, 1},
	{"8480-6", "Systolische bloeddruk", "mm[Hg]", "vital-signs", 128, 15, 85, 210, 0},
	{"8462-4", "Diastolische bloeddruk", "mm[Hg]", "vital-signs", 80, 10, 45, 130, 0},
	{"8867-4", "Hartfrequentie", "/min", "vital-signs", 72, 10, 40, 150, 0},
	{"8310-5", "Lichaamstemperatuur", "Cel", "vital-signs", 36.8, 0.4, 35, 41, 1},
	{"2708-6", "Zuurstofsaturatie", "%", "vital-signs", 97, 1.5, 85, 100, 0},
	{"4548-4", "HbA1c", "mmol/mol", "laboratory", 42, 8, 25, 120, 0},
	{"15074-8", "Glucose", "mmol/L", "laboratory", 5.6, 1.2, 2.5, 25, 1},
	{"14647-2", "Cholesterol totaal", "mmol/L", "laboratory", 5.0, 0.9, 2, 10, 1},
	{"59260-0", "Hemoglobine", "mmol/L", "laboratory", 8.7, 0.8, 4, 12, 1},
	{"14682-9", "Kreatinine", "umol/L", "laboratory", 80, 15, 30, 400, 0},
	{"33914-3", "eGFR", "mL/min/{1.73_m2}", "laboratory", 85, 15, 10, 130, 0},
	{"2823-3", "Kalium", "mmol/L", "laboratory", 4.2, 0.4, 2.8, 6.5, 1},
	{"2951-2", "Natrium", "mmol/L", "laboratory", 140, 3, 125, 155, 0},
}

// Measurement draws one value of a random measure, taken up to two years ago.
func (s *Source) Measurement() Measurement {
	m := measures[s.rng.IntN(len(measures))]
	v := m.mean + s.rng.NormFloat64()*m.sd
	v = math.Max(m.min, math.Min(m.max, v))
	scale := math.Pow(10, float64(m.decimals))
	v = math.Round(v*scale) / scale
	return Measurement{Code: m.code, Display: m.display, Unit: m.unit, Category: m.category, Value: v, DaysAgo: s.rng.IntN(730)}
}

// Digits draws n decimal digits, the first not zero.
func (s *Source) Digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0' + byte(s.rng.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '1' + byte(s.rng.IntN(9))
	}
	return string(b)
}

// ProfessionalName draws a name for a professional.
func (s *Source) ProfessionalName() string {
	g := pick(s.rng, femaleNames)
	if s.rng.IntN(2) == 0 {
		g = pick(s.rng, maleNames)
	}
	return g[:1] + ". " + pick(s.rng, familyNames)
}

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }
