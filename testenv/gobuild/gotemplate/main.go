// Command gotemplate is the reference oracle for strongroom's template fidelity tests.
//
// It executes Go text/template with the Sprig v3 function map plus the Helm-style extras that
// strongroom.templating exposes, so Python output can be compared byte for byte with real Go.
//
// Input on stdin is a stream of JSON objects (one per line, or any JSON whitespace between them):
//
//	{"template": "...", "data": {...}, "missingkey": "default|zero|error", "name": "template"}
//
// For each one it writes one JSON line: {"output": "..."} or {"error": "..."}. Streaming lets the
// test suite start a single process for hundreds of cases. The request {"op": "signatures"} answers
// with the Go parameter and result types of every function instead (JSON in "output").
//
// Two more requests model the Humanitec Template driver (driver.go), answering JSON in "output":
//
//	{"op": "yaml", "text": "..."}     the text read by sigs.k8s.io/yaml.Unmarshal into an interface{}
//	{"op": "driver", "input": {...}}  a whole Template-driver call: every template rendered and parsed
//
// Numbers in "data" become int64 when integral and float64 otherwise, the mapping strongroom
// documents for its Python data (see docs/templates.md).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

type request struct {
	Op         string          `json:"op"` // "" renders; "signatures", "yaml", "driver" as above
	Template   string          `json:"template"`
	Text       string          `json:"text"`  // op "yaml"
	Input      json.RawMessage `json:"input"` // op "driver"
	Data       json.RawMessage `json:"data"`
	MissingKey string          `json:"missingkey"`
	Name       string          `json:"name"`
}

type response struct {
	Output *string `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

// includeDepthLimit bounds include recursion the way Helm does, so a self-including template
// fails instead of overflowing the stack.
const includeDepthLimit = 1000

func main() {
	in := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<20))
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		var req request
		if err := in.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			fmt.Fprintf(os.Stderr, "gotemplate: bad request: %v\n", err)
			os.Exit(2)
		}
		var output string
		var err error
		switch req.Op {
		case "signatures":
			output, err = signatures()
		case "yaml":
			output, err = parseYAML(req.Text)
		case "driver":
			output, err = runDriver(req.Input)
		default:
			output, err = execute(req)
		}
		var resp response
		if err != nil {
			msg := err.Error()
			resp.Error = &msg
		} else {
			resp.Output = &output
		}
		if err := enc.Encode(resp); err != nil {
			fmt.Fprintf(os.Stderr, "gotemplate: write: %v\n", err)
			os.Exit(2)
		}
		// Flush per case: the Python side waits for each answer before sending the next one.
		if err := out.Flush(); err != nil {
			os.Exit(2)
		}
	}
}

func execute(req request) (output string, err error) {
	defer func() {
		// A panic in our own glue must not take down the batch; report it as this case's error.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	data, err := decodeData(req.Data)
	if err != nil {
		return "", fmt.Errorf("bad data: %w", err)
	}
	name := req.Name
	if name == "" {
		name = "template"
	}
	missing := req.MissingKey
	if missing == "" {
		missing = "default"
	}
	return render(name, req.Template, data, missing)
}

// render parses and executes one template with the function map, as Helm and the Template driver do.
func render(name, source string, data interface{}, missing string) (string, error) {
	tmpl := template.New(name).Option("missingkey=" + missing)
	tmpl.Funcs(funcMap(tmpl))
	if _, err := tmpl.Parse(source); err != nil {
		return "", err
	}
	var buf strings.Builder
	if err := tmpl.Execute(&buf, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// decodeData maps JSON onto the Go types a Python caller's values correspond to: integers stay
// int64 (as Kubernetes' unstructured decoding does) and only non-integral numbers become float64.
// Plain json.Unmarshal would turn every number into float64 and print 1000000 as 1e+06.
func decodeData(raw json.RawMessage) (interface{}, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeNumbers(v), nil
}

func normalizeNumbers(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, item := range x {
			x[k] = normalizeNumbers(item)
		}
		return x
	case []interface{}:
		for i, item := range x {
			x[i] = normalizeNumbers(item)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	default:
		return v
	}
}

// funcMap is Sprig's text function map with the same removals and additions as strongroom:
// no environment, DNS lookups that answer "" (as Helm's), plus Helm's YAML/JSON helpers, include,
// tpl and required.
func funcMap(root *template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	// Helm without --enable-dns: the lookup answers "" (no template reaches the network).
	funcs["getHostByName"] = func(name string) string { return "" }

	depth := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > includeDepthLimit {
			return "", fmt.Errorf("unable to execute template: rendering template has a nested reference name: %s", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var buf strings.Builder
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(source string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		parsed, err := clone.New(root.Name()).Parse(source)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", source, err)
		}
		var buf strings.Builder
		if err := parsed.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", source, err)
		}
		// Helm drops "<no value>" from tpl output so unset values render empty.
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil {
			return value, errors.New(message)
		}
		if s, ok := value.(string); ok && s == "" {
			return value, errors.New(message)
		}
		return value, nil
	}
	funcs["toYaml"] = func(v interface{}) string {
		out, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	funcs["mustToYaml"] = func(v interface{}) (string, error) {
		out, err := yaml.Marshal(v)
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(string(out), "\n"), nil
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromJsonArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	return funcs
}

type signature struct {
	In       []string `json:"in"`
	Variadic bool     `json:"variadic"`
	Out      []string `json:"out"`
}

// signatures reports the Go parameter and result types of every function in the map. The Python
// side converts arguments by these types exactly as text/template does (an int64 from the data is
// not an int), and a test checks that its copy of the table matches this one.
func signatures() (string, error) {
	funcs := funcMap(template.New("signatures"))
	names := make([]string, 0, len(funcs))
	for name := range funcs {
		names = append(names, name)
	}
	sort.Strings(names)
	table := make(map[string]signature, len(names))
	for _, name := range names {
		fn := reflect.TypeOf(funcs[name])
		sig := signature{In: []string{}, Out: []string{}, Variadic: fn.IsVariadic()}
		for i := 0; i < fn.NumIn(); i++ {
			sig.In = append(sig.In, fn.In(i).String())
		}
		for i := 0; i < fn.NumOut(); i++ {
			sig.Out = append(sig.Out, fn.Out(i).String())
		}
		table[name] = sig
	}
	out, err := json.Marshal(table)
	return string(out), err
}
