// Package config loads airlock.yaml: strict YAML (unknown keys are errors),
// ${VAR} expansion in values so secrets come from the environment or a file,
// defaults, and validation that reports every problem with its path.
package config
