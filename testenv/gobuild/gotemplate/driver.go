package main

// The Template driver's pipeline with Go doing every render and every YAML parse: the reference the
// compatibility corpus (tests/compat/) compares strongroom's driver with.
//
// The steps are the ones Humanitec documents and strongroom implements (docs/drivers.md, "Template"):
// templates under driver.values.templates and driver.secrets.templates; stages init, manifests,
// outputs, secrets, cookie, in that order, the values side before the secrets side; a string template
// is rendered and its text read by sigs.k8s.io/yaml.Unmarshal into an interface{} (numbers float64,
// keys strings); an object or list template has its string leaves rendered one by one (they stay
// strings); a manifest's data that is a string is YAML for the object. `.init` is the init results
// deep-merged (secrets over values); `.cookie` the previous cookie decoded by encoding/json.
//
// It is written apart from the Python code on purpose: the only thing the two share is the
// documented semantics.

import (
	"encoding/json"
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"
)

var stages = []string{"init", "manifests", "outputs", "secrets", "cookie"}

var sides = []string{"values", "secrets"}

type driverInput struct {
	ID       string          `json:"id"`
	Resource json.RawMessage `json:"resource"`
	Values   json.RawMessage `json:"values"`
	Secrets  json.RawMessage `json:"secrets"`
	Cookie   json.RawMessage `json:"cookie"` // the previous cookie as JSON, or null
}

type manifest struct {
	Location string                 `json:"location"`
	Data     map[string]interface{} `json:"data"`
}

type driverOutput struct {
	Values    map[string]interface{} `json:"values"`
	Secrets   map[string]interface{} `json:"secrets"`
	Manifests map[string]manifest    `json:"manifests"`
	Cookie    interface{}            `json:"cookie"`
}

// parseYAML answers op "yaml": the value sigs.k8s.io/yaml reads from text, as JSON.
func parseYAML(text string) (string, error) {
	value, err := unmarshalYAML(text)
	if err != nil {
		return "", err
	}
	out, err := json.Marshal(value)
	return string(out), err
}

func unmarshalYAML(text string) (interface{}, error) {
	var value interface{}
	err := yaml.Unmarshal([]byte(text), &value)
	return value, err
}

// runDriver answers op "driver": the outputs of one Template-driver call, as JSON.
func runDriver(raw json.RawMessage) (output string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	var in driverInput
	if err := json.Unmarshal(raw, &in); err != nil {
		return "", fmt.Errorf("bad input: %w", err)
	}
	// Driver inputs and resource inputs arrive the way Kubernetes decodes a custom resource (int64).
	resource, err := decodeData(in.Resource)
	if err != nil {
		return "", err
	}
	values, err := decodeData(in.Values)
	if err != nil {
		return "", err
	}
	secrets, err := decodeData(in.Secrets)
	if err != nil {
		return "", err
	}
	var cookie interface{}
	if len(in.Cookie) > 0 {
		if err := json.Unmarshal(in.Cookie, &cookie); err != nil {
			return "", fmt.Errorf("bad cookie: %w", err)
		}
	}
	context := map[string]interface{}{
		"id":       in.ID,
		"resource": resource,
		"driver":   map[string]interface{}{"values": values, "secrets": secrets},
		"cookie":   cookie,
		"init":     nil,
	}
	templates := []map[string]interface{}{templatesOf(values), templatesOf(secrets)}

	results := map[string][]interface{}{}
	for _, stage := range stages {
		pair := make([]interface{}, len(sides))
		for i, side := range sides {
			source, ok := templates[i][stage]
			if !ok || source == nil {
				continue
			}
			value, err := evaluate(source, side+".templates."+stage, context)
			if err != nil {
				return "", err
			}
			pair[i] = value
		}
		results[stage] = pair
		if stage == "init" {
			context["init"] = merge(pair[0], pair[1])
		}
	}

	out := driverOutput{Manifests: map[string]manifest{}}
	for i, document := range results["manifests"] {
		if err := collectManifests(document, sides[i]+".templates.manifests", out.Manifests); err != nil {
			return "", err
		}
	}
	if out.Values, err = mapping(results["outputs"][0], "values.templates.outputs"); err != nil {
		return "", err
	}
	secretOutputs := merge(merge(results["secrets"][0], results["secrets"][1]), results["outputs"][1])
	if secretOutputs == nil {
		secretOutputs = map[string]interface{}{}
	}
	tree, ok := secretOutputs.(map[string]interface{})
	if !ok {
		return "", fmt.Errorf("secret outputs must be a mapping, not %T", secretOutputs)
	}
	if out.Secrets, err = secretTree(tree); err != nil {
		return "", err
	}
	out.Cookie = merge(results["cookie"][0], results["cookie"][1])
	encoded, err := json.Marshal(out)
	return string(encoded), err
}

func templatesOf(inputs interface{}) map[string]interface{} {
	if m, ok := inputs.(map[string]interface{}); ok {
		if t, ok := m["templates"].(map[string]interface{}); ok {
			return t
		}
	}
	return map[string]interface{}{}
}

func evaluate(source interface{}, name string, context map[string]interface{}) (interface{}, error) {
	switch s := source.(type) {
	case string:
		text, err := render(name, s, context, "default")
		if err != nil {
			return nil, err
		}
		return unmarshalYAML(text)
	default:
		// Objects and lists have their string leaves rendered; numbers, booleans are themselves.
		return evaluateLeaves(source, name, context)
	}
}

func evaluateLeaves(node interface{}, name string, context map[string]interface{}) (interface{}, error) {
	switch n := node.(type) {
	case string:
		return render(name, n, context, "default")
	case map[string]interface{}:
		out := make(map[string]interface{}, len(n))
		for key, item := range n {
			value, err := evaluateLeaves(item, name+"."+key, context)
			if err != nil {
				return nil, err
			}
			out[key] = value
		}
		return out, nil
	case []interface{}:
		out := make([]interface{}, len(n))
		for i, item := range n {
			value, err := evaluateLeaves(item, fmt.Sprintf("%s[%d]", name, i), context)
			if err != nil {
				return nil, err
			}
			out[i] = value
		}
		return out, nil
	default:
		return node, nil
	}
}

func collectManifests(document interface{}, name string, into map[string]manifest) error {
	entries, err := mapping(document, name)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(entries))
	for key := range entries {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		entry, ok := entries[key].(map[string]interface{})
		if !ok {
			return fmt.Errorf("%s[%s] is not a mapping", name, key)
		}
		location, _ := entry["location"].(string)
		switch location {
		case "namespace", "cluster", "containers", "volumes":
		default:
			return fmt.Errorf("%s[%s].location %q is not a manifest location", name, key, location)
		}
		data := entry["data"]
		if text, ok := data.(string); ok {
			if data, err = unmarshalYAML(text); err != nil {
				return fmt.Errorf("%s[%s].data: %w", name, key, err)
			}
		}
		object, ok := data.(map[string]interface{})
		if !ok {
			return fmt.Errorf("%s[%s].data is not a mapping but %T", name, key, data)
		}
		into[key] = manifest{Location: location, Data: object}
	}
	return nil
}

func mapping(document interface{}, name string) (map[string]interface{}, error) {
	if document == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := document.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s must produce a mapping, not %T", name, document)
	}
	return m, nil
}

// merge deep-merges over onto base when both are mappings; otherwise over wins unless it is nil.
func merge(base, over interface{}) interface{} {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	b, baseIsMap := base.(map[string]interface{})
	o, overIsMap := over.(map[string]interface{})
	if !baseIsMap || !overIsMap {
		return over
	}
	merged := make(map[string]interface{}, len(b)+len(o))
	for key, value := range b {
		merged[key] = value
	}
	for key, value := range o {
		merged[key] = merge(merged[key], value)
	}
	return merged
}

// secretTree is what a driver's secret outputs become: strings as they are, mappings recursed, nulls
// left out, any other value its JSON text.
func secretTree(node map[string]interface{}) (map[string]interface{}, error) {
	out := make(map[string]interface{}, len(node))
	for key, value := range node {
		switch v := value.(type) {
		case nil:
		case string:
			out[key] = v
		case map[string]interface{}:
			sub, err := secretTree(v)
			if err != nil {
				return nil, err
			}
			out[key] = sub
		default:
			text, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out[key] = string(text)
		}
	}
	return out, nil
}
