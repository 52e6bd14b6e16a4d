package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves flags written after positional arguments in front of
// them, command by command, so that `stofuse volume add NAME --path DIR`
// works: urfave/cli v2 stops reading flags at the first positional
// argument. Everything after "--" is left alone.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	return append([]string{args[0]}, reorder(app.Commands, app.Flags, args[1:])...)
}

func reorder(commands []*cli.Command, flags []cli.Flag, args []string) []string {
	var flagArgs, positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if len(positional) == 0 {
			if sub := findCommand(commands, arg); sub != nil {
				rest := reorder(sub.Subcommands, sub.Flags, args[i+1:])
				return append(append(flagArgs, arg), rest...)
			}
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			positional = append(positional, arg)
			continue
		}
		flagArgs = append(flagArgs, arg)
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !hasValue && takesValue(flags, name) && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	return append(flagArgs, positional...)
}

func findCommand(commands []*cli.Command, name string) *cli.Command {
	for _, c := range commands {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
