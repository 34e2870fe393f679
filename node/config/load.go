package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable that overrides
// a key.
const EnvPrefix = "NFSIMAP"

// Keys lists every configuration key ("listen.imap", ...), in struct order.
func Keys() []string {
	var keys []string
	walk(reflect.ValueOf(DefaultConfig()), "", func(key string, _ reflect.Value) {
		keys = append(keys, key)
	})
	return keys
}

// walk calls fn for every leaf field of v with its dotted key.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("mapstructure")
		if name == "" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			walk(v.Field(i), key, fn)
			continue
		}
		fn(key, v.Field(i))
	}
}

// Load builds the configuration: DefaultConfig, overridden by the YAML
// file at path ("" = no file), by NFSIMAP_* environment variables, then by
// the flags of fs that were set and whose name is a key ("listen.imap");
// fs may be nil. Unknown keys in the file are an error that names them.
// Load does not call Validate.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	def := DefaultConfig()
	walk(reflect.ValueOf(def), "", func(key string, val reflect.Value) {
		v.SetDefault(key, val.Interface())
	})
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		var bindErr error
		fs.VisitAll(func(f *pflag.Flag) {
			if v.IsSet(f.Name) || isKey(f.Name) {
				if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
					bindErr = err
				}
			}
		})
		if bindErr != nil {
			return Config{}, fmt.Errorf("config: flags: %w", bindErr)
		}
	}
	cfg := def
	if err := v.UnmarshalExact(&cfg); err != nil {
		where := "settings"
		if path != "" {
			where = path
		}
		return Config{}, fmt.Errorf("config: %s: %w", where, err)
	}
	return cfg, nil
}

func isKey(name string) bool {
	for _, k := range Keys() {
		if k == name {
			return true
		}
	}
	return false
}

// LoadFile is Load without flags, followed by Validate.
func LoadFile(path string) (Config, error) {
	cfg, err := Load(path, nil)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// Marshal writes the configuration as YAML, durations as "30s", with the
// cluster secret hidden.
func Marshal(c Config) ([]byte, error) {
	if c.Cluster.Secret != "" {
		c.Cluster.Secret = "<hidden>"
	}
	root := map[string]any{}
	walk(reflect.ValueOf(c), "", func(key string, val reflect.Value) {
		m := root
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		x := val.Interface()
		if d, ok := x.(time.Duration); ok {
			x = d.String()
		}
		m[parts[len(parts)-1]] = x
	})
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}

// ErrNoConfig is returned by callers that need a file and got none.
var ErrNoConfig = errors.New("config: no configuration file given (-c FILE)")
