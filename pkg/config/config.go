// Package config loads a binary's configuration from environment variables into a struct, reporting every
// problem at once.
//
// Fields are declared with tags:
//
//	Brokers []string      `env:"KAFKA_BROKERS" default:"127.0.0.1:9092" help:"Kafka bootstrap brokers, comma-separated"`
//	Timeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s" help:"..."`
//
// Supported field types: string, bool, int, int64, uint32, float64, time.Duration and []string (comma-separated).
// Nested structs are walked; a `prefix` tag on a struct field prepends to the names inside it.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Lookup finds an environment variable; os.LookupEnv in production, a map in tests.
type Lookup func(name string) (string, bool)

// Var describes one environment variable a config struct reads.
type Var struct {
	// Name is the environment variable; Default its default value ("" when none); Help its meaning; Type
	// one of string, bool, int, float64, duration, list.
	Name    string `json:"name"`
	Default string `json:"default"`
	Help    string `json:"help"`
	Type    string `json:"type"`
}

// Error lists every problem found while loading.
type Error struct {
	Problems []string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Validator is implemented by configs that check cross-field rules after loading; it returns every problem.
type Validator interface {
	Validate() []string
}

// Load fills dst (a pointer to a struct) from lookup (os.LookupEnv when nil), applying defaults, then calls
// Validate when dst implements Validator. It returns an *Error naming every bad variable.
func Load(dst any, lookup Lookup) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("config: Load needs a pointer to a struct")
	}
	var problems []string
	walk(v.Elem(), "", func(f reflect.Value, sf reflect.StructField, name string) {
		raw, ok := lookup(name)
		if !ok {
			raw, ok = sf.Tag.Lookup("default")
			if !ok {
				return
			}
		}
		if err := set(f, raw); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", name, raw, err))
		}
	})
	if val, ok := dst.(Validator); ok && len(problems) == 0 {
		problems = append(problems, val.Validate()...)
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// Describe lists the variables a config struct reads, in declaration order, for documentation and checks.
func Describe(cfg any) []Var {
	var out []Var
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	walk(v, "", func(f reflect.Value, sf reflect.StructField, name string) {
		out = append(out, Var{Name: name, Default: sf.Tag.Get("default"), Help: sf.Tag.Get("help"), Type: typeName(f)})
	})
	return out
}

func walk(v reflect.Value, prefix string, fn func(reflect.Value, reflect.StructField, string)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if name, ok := sf.Tag.Lookup("env"); ok {
			fn(f, sf, prefix+name)
			continue
		}
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Time]() {
			walk(f, prefix+sf.Tag.Get("prefix"), fn)
		}
	}
}

func typeName(f reflect.Value) string {
	if f.Type() == reflect.TypeFor[time.Duration]() {
		return "duration"
	}
	if f.Kind() == reflect.Slice {
		return "list"
	}
	return f.Kind().String()
}

func set(f reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (e.g. 500ms, 10s, 1h)")
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(raw)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64 || f.Kind() == reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return errors.New("not an integer")
		}
		f.SetInt(n)
	case f.Kind() == reflect.Uint32 || f.Kind() == reflect.Uint64 || f.Kind() == reflect.Uint:
		n, err := strconv.ParseUint(raw, 10, f.Type().Bits())
		if err != nil {
			return errors.New("not a non-negative integer")
		}
		f.SetUint(n)
	case f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}
