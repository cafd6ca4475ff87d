package ctlcmd

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/ring"
)

const topLong = `A live full-screen view of every topic on the bus, refreshed every
--interval: state, type, rate, samples published, subscribers, and under
each topic its subscribers as they report themselves (name, pid, mode,
received, lost per second, lag, age of the last report).

Keys: s sorts by the next column (topic, rate, subscribers, lost/s),
r reverses the order, q or Ctrl-C quits. --once prints one screen as
plain text, for scripts: two looks --interval apart, so that the
per-second figures are measured.`

// topSorts are the orders top offers, in the order s cycles through them.
var topSorts = []string{"topic", "rate", "subscribers", "lost"}

func topCmd(b func() (bus.Options, error)) *cobra.Command {
	var once bool
	var interval time.Duration
	var sortBy string
	c := &cobra.Command{
		Use:     "top",
		Short:   "Watch every topic's rate, subscribers, losses and lag, live",
		Long:    topLong,
		Example: "  busctl top\n  busctl top --sort lost\n  busctl top --once",
		Args:    app.ExactArgs(0),
	}
	c.Flags().BoolVar(&once, "once", false, "print one screen as plain text and exit")
	app.DurationVar(c.Flags(), &interval, "interval", time.Second, false, "time between refreshes")
	c.Flags().StringVar(&sortBy, "sort", "topic", "order of the topics: "+strings.Join(topSorts, ", "))
	c.RunE = func(c *cobra.Command, _ []string) error {
		opts, err := b()
		if err != nil {
			return err
		}
		if interval <= 0 {
			return app.Usagef("--interval %v: want more than 0", interval)
		}
		if !slices.Contains(topSorts, sortBy) {
			return app.Usagef("--sort %q: want %s", sortBy, strings.Join(topSorts, ", "))
		}
		m := &topModel{opts: opts, interval: interval, sortBy: sortBy, prev: map[peerKey]peerSeen{}}
		if once {
			m.take(look(opts))
			time.Sleep(interval)
			m.take(look(opts))
			_, err := io.WriteString(c.OutOrStdout(), m.render(0))
			return err
		}
		_, err = tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(c.InOrStdin()), tea.WithOutput(c.OutOrStdout())).Run()
		return err
	}
	return c
}

// snapshot is one look at the bus.
type snapshot struct {
	at     time.Time
	topics []bus.TopicInfo
	err    error
}

func look(opts bus.Options) snapshot {
	t, err := bus.List(opts)
	return snapshot{at: time.Now(), topics: t, err: err}
}

// peerKey tells one attachment of a subscriber from another.
type peerKey struct {
	topic    string
	pid      int32
	attached int64
}

type peerSeen struct {
	lost uint64
	at   time.Time
}

// topModel is busctl top's state, for bubbletea and for --once.
type topModel struct {
	opts     bus.Options
	interval time.Duration
	sortBy   string
	reverse  bool
	width    int

	last    snapshot
	prev    map[peerKey]peerSeen // what the previous look saw
	lostPS  map[peerKey]float64  // lost per second between the last two looks
	topicLS map[string]float64   // the topic's subscribers' lost/s, summed
}

// take folds a new look into the model.
func (m *topModel) take(s snapshot) {
	lost := map[peerKey]float64{}
	topicLS := map[string]float64{}
	seen := map[peerKey]peerSeen{}
	for _, t := range s.topics {
		for _, p := range t.Peers {
			k := peerKey{t.Topic, p.PID, p.AttachedUnixNano}
			if old, ok := m.prev[k]; ok && p.Lost >= old.lost {
				if d := s.at.Sub(old.at).Seconds(); d > 0 {
					lost[k] = float64(p.Lost-old.lost) / d
					topicLS[t.Topic] += lost[k]
				}
			}
			seen[k] = peerSeen{lost: p.Lost, at: s.at}
		}
	}
	m.last, m.prev, m.lostPS, m.topicLS = s, seen, lost, topicLS
}

type lookMsg snapshot

func (m *topModel) fetch() tea.Cmd {
	opts := m.opts
	return func() tea.Msg { return lookMsg(look(opts)) }
}

func (m *topModel) Init() tea.Cmd { return m.fetch() }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case lookMsg:
		m.take(snapshot(msg))
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return refreshMsg{} })
	case refreshMsg:
		return m, m.fetch()
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "s":
			i := slices.Index(topSorts, m.sortBy)
			m.sortBy = topSorts[(i+1)%len(topSorts)]
		case "r":
			m.reverse = !m.reverse
		}
	}
	return m, nil
}

type refreshMsg struct{}

func (m *topModel) View() string { return m.render(m.width) }

// render draws the screen; width 0 does not cut lines.
func (m *topModel) render(width int) string {
	var sb strings.Builder
	order := m.sortBy
	if m.reverse {
		order += ", reversed"
	}
	fmt.Fprintf(&sb, "sensorbus top   bus %s   %s   sorted by %s   (s: sort, r: reverse, q: quit)\n\n",
		m.busDir(), m.last.at.Format("15:04:05"), order)
	if m.last.err != nil {
		fmt.Fprintf(&sb, "error: %s\n", app.OneLine(m.last.err.Error()))
	}
	topics := slices.Clone(m.last.topics)
	slices.SortStableFunc(topics, func(a, b bus.TopicInfo) int {
		var c int
		switch m.sortBy {
		case "rate":
			c = cmp.Compare(b.RateHz, a.RateHz)
		case "subscribers":
			c = cmp.Compare(b.Subscribers, a.Subscribers)
		case "lost":
			c = cmp.Compare(m.topicLS[b.Topic], m.topicLS[a.Topic])
		}
		if c == 0 {
			c = cmp.Compare(a.Topic, b.Topic)
		}
		if m.reverse {
			c = -c
		}
		return c
	})
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tSTATE\tTYPE\tRATE/s\tPUBLISHED\tSUBS\tLOST/s\tLAG\tREPORTED")
	for _, t := range topics {
		typ := cmp.Or(t.Schema, "untyped")
		if t.State != bus.StateLive {
			typ = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%d\t%d\t%.0f\t\t\n", t.Topic, t.State, typ, t.RateHz, t.Published, t.Subscribers, m.topicLS[t.Topic])
		for _, p := range t.Peers {
			name := p.Name
			if p.ReportUnixNano == 0 {
				name = "(no report)"
			}
			mode := "stream"
			if ring.Mode(p.Mode) == ring.Latest {
				mode = "latest"
			}
			age := "-"
			if p.ReportUnixNano != 0 {
				age = m.last.at.Sub(time.Unix(0, p.ReportUnixNano)).Round(100*time.Millisecond).String() + " ago"
			}
			k := peerKey{t.Topic, p.PID, p.AttachedUnixNano}
			fmt.Fprintf(tw, "  %s\tpid %d\t%s\t\t%d recv\t\t%.0f\t%d\t%s\n", name, p.PID, mode, p.Received, m.lostPS[k], p.Lag, age)
		}
	}
	tw.Flush()
	if len(topics) == 0 && m.last.err == nil {
		sb.WriteString("no topics on the bus\n")
	}
	out := sb.String()
	if width > 0 {
		lines := strings.Split(out, "\n")
		for i, l := range lines {
			if r := []rune(l); len(r) > width {
				lines[i] = string(r[:width])
			}
		}
		out = strings.Join(lines, "\n")
	}
	return out
}

func (m *topModel) busDir() string { return cmp.Or(m.opts.Dir, bus.DefaultDir()) }

// withSubscribers makes busctl info list the topic's subscribers, as
// they report themselves, after what it prints in text and wide output
// (JSON carries them in subscribers_list already).
func withSubscribers(c *cobra.Command, b func() (bus.Options, error)) *cobra.Command {
	run := c.RunE
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := run(c, args); err != nil {
			return err
		}
		if j, _ := c.Flags().GetBool("json"); j {
			return nil
		}
		if o, _ := c.Flags().GetString("output"); o == "json" {
			return nil
		}
		opts, err := b()
		if err != nil {
			return err
		}
		t, err := bus.Info(opts, args[0])
		if err != nil || len(t.Peers) == 0 {
			return nil
		}
		w := c.OutOrStdout()
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBSCRIBER\tPID\tUID\tMODE\tRECEIVED\tLOST\tLAG\tLAST REPORT")
		now := time.Now()
		for _, p := range t.Peers {
			name, age := p.Name, "never"
			if p.ReportUnixNano == 0 {
				name = "-"
			} else {
				age = now.Sub(time.Unix(0, p.ReportUnixNano)).Round(time.Millisecond).String() + " ago"
			}
			mode := "stream"
			if ring.Mode(p.Mode) == ring.Latest {
				mode = "latest"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\n", name, p.PID, p.UID, mode, p.Received, p.Lost, p.Lag, age)
		}
		if t.Subscribers > len(t.Peers) {
			fmt.Fprintf(tw, "(and %d more)\n", t.Subscribers-len(t.Peers))
		}
		return tw.Flush()
	}
	return c
}
