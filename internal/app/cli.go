package app

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewRoot returns a program's root command: errors and usage are left to
// Execute, --version prints Version.
func NewRoot(use, short, long, example string) *cobra.Command {
	c := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Version:            Version(),
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableSuggestions: true,
	}
	c.CompletionOptions.DisableDefaultCmd = true
	c.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	return c
}

// Version describes this build: the module version and the VCS revision
// the go command recorded, from debug.ReadBuildInfo.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " revision " + rev[:min(12, len(rev))]
		if modified == "true" {
			v += " (modified)"
		}
	}
	return v + " " + bi.GoVersion
}

// Execute runs root with args and returns the exit code. An error is one
// line on stderr; flag and argument errors exit 2.
func Execute(root *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	started := false
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		started = true
		return nil
	}
	if args == nil {
		args = []string{} // nil makes cobra read os.Args
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError(c, err) })
	usage := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		if err := usage(c); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.OutOrStderr(), "\n%s\n", ExitCodesHelp)
		return err
	})
	_, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if !started && !errors.As(err, &ue) {
		// Cobra's own: an unknown command or a wrong number of arguments.
		err = Usagef("%s (run '%s --help')", err, root.Name())
	}
	return Fail(stderr, root.Name(), err)
}

// flagError turns pflag's errors into one line naming the flag as typed.
func flagError(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if errors.As(err, &ne) && len(ne.GetSpecifiedShortnames()) > 1 && c.Flags().Lookup(ne.GetSpecifiedShortnames()) != nil {
		return Usagef("-%s: long flags take two dashes: --%s", ne.GetSpecifiedShortnames(), ne.GetSpecifiedShortnames())
	}
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return Usagef("%v", err)
	}
	f := iv.GetFlag()
	var ue *UsageError
	if errors.As(iv.Unwrap(), &ue) {
		return Usagef("--%s %q: %s", f.Name, iv.GetValue(), ue.Msg)
	}
	want := map[string]string{
		"float64": "want a number",
		"int":     "want a whole number",
		"uint64":  "want a whole number, 0 or more",
		"bool":    "want true or false",
	}[f.Value.Type()]
	if want == "" {
		want = iv.Unwrap().Error()
	}
	return Usagef("--%s %q: %s", f.Name, iv.GetValue(), want)
}

// ExactArgs accepts exactly n arguments, named in the error.
func ExactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		what := ""
		if c.HasParent() {
			what = c.Name() + ": "
		}
		if len(args) < n {
			return Usagef("%smissing %s (usage: %s)", what, strings.Join(names[len(args):], " "), c.UseLine())
		}
		return Usagef("%sunexpected argument %q (usage: %s)", what, args[n], c.UseLine())
	}
}
