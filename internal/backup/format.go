package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"unicode/utf8"
)

// The plaintext of a backup, inside the age encryption and a gzip layer, is
// JSON lines, the same for both engines (so a backup of SQLite restores
// into PostgreSQL and back):
//
//	{"format":"zorgkluis-backup","version":1,...header...}
//	{"table":"tenants","columns":[{"Name":"id","Type":"text"},...]}
//	["t1","Zorg Oost",...]            one line per row
//	{"end":"tenants","rows":1}
//	...every table, in creation order...
//	{"manifest":{...},"sha256":"<hex SHA-256 of every line before this one>"}
//
// Values by column type: text a JSON string, bigint a number, boolean
// true/false, bytea a base64 string, NULL null. The trailer's checksum and
// count lines make a cut or edited stream fail even where gzip would not
// notice; age's own authentication (STREAM, per 64 KiB chunk) already
// refuses any change to the encrypted file and a wrong key.
const formatName = "zorgkluis-backup"

const formatVersion = 1

type header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Created string `json:"created"`
	Engine  string `json:"engine"`
	Schema  int64  `json:"schema"`
}

type tableLine struct {
	Table   string   `json:"table"`
	Columns []column `json:"columns"`
}

type column struct{ Name, Type string }

type endLine struct {
	End  string `json:"end"`
	Rows int64  `json:"rows"`
}

type trailer struct {
	Manifest *Manifest `json:"manifest"`
	SHA256   string    `json:"sha256"`
}

// encoder writes the plaintext stream.
type encoder struct {
	gz  *gzip.Writer
	bw  *bufio.Writer
	sum hash.Hash
	buf []byte
	n   int64 // plaintext bytes
}

func newEncoder(w io.Writer) *encoder {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // level valid: no error
	return &encoder{gz: gz, bw: bufio.NewWriterSize(gz, 256<<10), sum: sha256.New()}
}

func (e *encoder) line(b []byte) error {
	b = append(b, '\n')
	e.sum.Write(b)
	e.n += int64(len(b))
	_, err := e.bw.Write(b)
	return err
}

func (e *encoder) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.line(b)
}

// row writes one row; vals hold string, int64, bool, []byte or nil.
func (e *encoder) row(vals []any) error {
	b := append(e.buf[:0], '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		switch v := v.(type) {
		case nil:
			b = append(b, "null"...)
		case string:
			if !utf8.ValidString(v) {
				return errors.New("a text value is not valid UTF-8")
			}
			b = appendString(b, v)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case []byte:
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, v)
			b = append(b, '"')
		default:
			return fmt.Errorf("value of type %T", v)
		}
	}
	b = append(b, ']')
	e.buf = b
	return e.line(b)
}

// finish writes the trailer and flushes the gzip layer.
func (e *encoder) finish(m *Manifest) error {
	sum := hex.EncodeToString(e.sum.Sum(nil))
	b, err := json.Marshal(trailer{Manifest: m, SHA256: sum})
	if err != nil {
		return err
	}
	if _, err := e.bw.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := e.bw.Flush(); err != nil {
		return err
	}
	return e.gz.Close()
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, everything else (valid UTF-8) as it is.
func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ErrCorrupt is a backup whose content does not check out: cut short,
// edited, or not a zorgkluis backup.
var ErrCorrupt = errors.New("backup is damaged or incomplete")

// decoder reads the plaintext stream and checks its structure and checksum.
type decoder struct {
	// lazy leaves rows unparsed (record.raw) for a reader that wants few.
	lazy   bool
	br     *bufio.Reader
	sum    hash.Hash
	line   []byte
	header header
}

func newDecoder(r io.Reader) (*decoder, error) {
	gz, err := gzip.NewReader(r)
	if errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	d := &decoder{br: bufio.NewReaderSize(gz, 256<<10), sum: sha256.New()}
	if err := d.next(); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(d.line, &d.header); err != nil || d.header.Format != formatName {
		return nil, fmt.Errorf("%w: not a zorgkluis backup", ErrCorrupt)
	}
	if d.header.Version != formatVersion {
		return nil, fmt.Errorf("backup format version %d; this zorgkluis reads version %d", d.header.Version, formatVersion)
	}
	d.sum.Write(d.line)
	d.sum.Write([]byte{'\n'})
	return d, nil
}

// next reads one line (without its newline) into d.line.
func (d *decoder) next() error {
	var err error
	d.line = d.line[:0]
	for {
		var part []byte
		part, err = d.br.ReadSlice('\n')
		d.line = append(d.line, part...)
		if err != bufio.ErrBufferFull {
			break
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the stream ends without its trailer (cut short)", ErrCorrupt)
		}
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	d.line = d.line[:len(d.line)-1]
	return nil
}

// record is one item of the stream after the header.
type record struct {
	table   *tableLine
	row     []json.RawMessage
	raw     []byte // a row's line when the decoder is lazy; valid until the next read
	end     *endLine
	trailer *trailer
}

// read returns the next item, checksumming every line before the trailer.
func (d *decoder) read() (record, error) {
	if err := d.next(); err != nil {
		return record{}, err
	}
	if len(d.line) > 0 && d.line[0] == '[' {
		d.sum.Write(d.line)
		d.sum.Write([]byte{'\n'})
		if d.lazy {
			return record{raw: d.line}, nil
		}
		var row []json.RawMessage
		if err := json.Unmarshal(d.line, &row); err != nil {
			return record{}, fmt.Errorf("%w: a row is not JSON", ErrCorrupt)
		}
		return record{row: row}, nil
	}
	var probe struct {
		Table    *string         `json:"table"`
		End      *string         `json:"end"`
		Manifest json.RawMessage `json:"manifest"`
	}
	if err := json.Unmarshal(d.line, &probe); err != nil {
		return record{}, fmt.Errorf("%w: a line is not JSON", ErrCorrupt)
	}
	switch {
	case probe.Manifest != nil:
		var t trailer
		if err := json.Unmarshal(d.line, &t); err != nil || t.Manifest == nil {
			return record{}, fmt.Errorf("%w: bad trailer", ErrCorrupt)
		}
		if got := hex.EncodeToString(d.sum.Sum(nil)); got != t.SHA256 {
			return record{}, fmt.Errorf("%w: checksum mismatch (content %s, trailer says %s)", ErrCorrupt, got, t.SHA256)
		}
		// Nothing may follow the trailer.
		if _, err := d.br.ReadByte(); err != io.EOF {
			return record{}, fmt.Errorf("%w: data after the trailer", ErrCorrupt)
		}
		return record{trailer: &t}, nil
	case probe.Table != nil:
		d.sum.Write(d.line)
		d.sum.Write([]byte{'\n'})
		var t tableLine
		if err := json.Unmarshal(d.line, &t); err != nil {
			return record{}, fmt.Errorf("%w: bad table line", ErrCorrupt)
		}
		return record{table: &t}, nil
	case probe.End != nil:
		d.sum.Write(d.line)
		d.sum.Write([]byte{'\n'})
		var e endLine
		if err := json.Unmarshal(d.line, &e); err != nil {
			return record{}, fmt.Errorf("%w: bad end line", ErrCorrupt)
		}
		return record{end: &e}, nil
	}
	return record{}, fmt.Errorf("%w: unknown line", ErrCorrupt)
}

// decodeValue turns one JSON value of a row into what the database takes.
func decodeValue(raw json.RawMessage, typ string) (any, error) {
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	switch typ {
	case "text":
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case "bigint":
		return strconv.ParseInt(string(raw), 10, 64)
	case "boolean":
		return strconv.ParseBool(string(raw))
	case "bytea":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	}
	return nil, fmt.Errorf("column type %q", typ)
}
