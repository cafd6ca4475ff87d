package schema

import "fmt"

// Registry maps names and fingerprints to schemas, for programs that
// handle topics of any registered type (display, logging, JSON). It is not
// safe for concurrent modification; register everything first.
type Registry struct {
	byName map[string]*Schema
	byFP   map[uint64]*Schema
}

// NewRegistry returns a registry holding the built-in schemas and extra.
func NewRegistry(extra ...*Schema) (*Registry, error) {
	r := &Registry{byName: map[string]*Schema{}, byFP: map[uint64]*Schema{}}
	for _, s := range append(Builtins(), extra...) {
		if err := r.Register(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds s. A different schema under the same name, or a
// fingerprint collision, is an error.
func (r *Registry) Register(s *Schema) error {
	if old, ok := r.byName[s.Name]; ok && old != s {
		if old.Fingerprint == s.Fingerprint {
			return nil
		}
		return fmt.Errorf("schema: %s is already registered as %s", s, old)
	}
	if old, ok := r.byFP[s.Fingerprint]; ok && old.Name != s.Name {
		return fmt.Errorf("schema: fingerprint of %s collides with %s", s, old)
	}
	r.byName[s.Name] = s
	r.byFP[s.Fingerprint] = s
	return nil
}

// Lookup returns the schema named name.
func (r *Registry) Lookup(name string) (*Schema, bool) {
	s, ok := r.byName[name]
	return s, ok
}

// ByFingerprint returns the schema with fingerprint fp.
func (r *Registry) ByFingerprint(fp uint64) (*Schema, bool) {
	s, ok := r.byFP[fp]
	return s, ok
}

// Schemas returns every registered schema.
func (r *Registry) Schemas() []*Schema {
	out := make([]*Schema, 0, len(r.byName))
	for _, s := range r.byName {
		out = append(out, s)
	}
	return out
}
