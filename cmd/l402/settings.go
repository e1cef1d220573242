package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Every flag can also come from the environment and from a config file;
// the command line wins over the environment, which wins over the file.
//
//	--max-price 10           L402_MAX_PRICE=10        max-price: 10
//	--budget day=5000 ...    L402_BUDGET=day=5000,*/hour=100
//	                                                  budget: [day=5000, "*/hour=100"]
//
// The file is YAML, one key per flag name; --config, L402_CONFIG or
// $XDG_CONFIG_HOME/l402/config.yaml (~/.config/l402/config.yaml) names it.

// envName is the environment variable of a flag: L402_ and its name in
// upper case, dashes as underscores.
func envName(flagName string) string {
	return "L402_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// repeatable flags take a list: from the environment comma-separated, from
// the file a YAML list.
func repeatable(f *flag.Flag) bool {
	_, ok := f.Value.(listFlag)
	return ok
}

// listFlag is a flag that may be given several times.
type listFlag interface {
	flag.Value
	isList()
}

// defaultConfigPath is where the config file is looked for when none is
// named.
func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "l402", "config.yaml")
}

// defaultStorePath is the store's default location:
// $XDG_STATE_HOME/l402/l402.db, else ~/.local/state/l402/l402.db.
func defaultStorePath() string {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "l402", "l402.db")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "l402", "l402.db")
}

// applySettings fills every flag not given on the command line from the
// environment, then from the config file.
func applySettings(fset *flag.FlagSet, configFlag string) error {
	given := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fset.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == "config" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || v == "" {
			return
		}
		given[f.Name] = true
		vals := []string{v}
		if repeatable(f) {
			vals = strings.Split(v, ",")
		}
		for _, one := range vals {
			if err := fset.Set(f.Name, strings.TrimSpace(one)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	path, named := configFlag, configFlag != ""
	if !named {
		if path, named = os.LookupEnv("L402_CONFIG"); !named || path == "" {
			path, named = defaultConfigPath(), false
		}
	}
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(raw, &conf); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for name, v := range conf {
		f := fset.Lookup(name)
		if f == nil {
			if knownFlag(name) {
				continue // another command's setting
			}
			errs = append(errs, fmt.Errorf("config %s: unknown setting %q", path, name))
			continue
		}
		if given[name] {
			continue
		}
		var vals []string
		switch x := v.(type) {
		case []any:
			if !repeatable(f) {
				errs = append(errs, fmt.Errorf("config %s: %s takes one value, not a list", path, name))
				continue
			}
			for _, e := range x {
				vals = append(vals, fmt.Sprint(e))
			}
		default:
			vals = []string{fmt.Sprint(x)}
		}
		for _, one := range vals {
			if err := fset.Set(name, one); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %w", path, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// knownFlag reports whether any command has a flag of that name, so one
// config file can hold the settings of all of them.
func knownFlag(name string) bool {
	for _, cmd := range []string{"get", "mcp", "tokens", "spend", "budget"} {
		if newFlags(cmd, nil).Lookup(name) != nil {
			return true
		}
	}
	return false
}
