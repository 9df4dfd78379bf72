package dashboard

import (
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

func TestPct(t *testing.T) {
	for _, tt := range []struct {
		num, den int64
		want     string
	}{
		{2, 15, "13.3"}, {1, 10, "10.0"}, {0, 5, "0.0"}, {1, 1000, "0.1"}, {1, 1001, "0.0"},
		{9996, 10000, "99.9"}, {1, 1, "100.0"}, {3, 2, "150.0"}, {1, 0, ""},
		// Near the int64 limit, where num*1000 would overflow an int64.
		{int64(9e18), int64(9e18), "100.0"}, {int64(9e18) - 1, int64(9e18), "99.9"},
	} {
		if got := pct(big.NewInt(tt.num), big.NewInt(tt.den)); got != tt.want {
			t.Errorf("pct(%d, %d) = %q, want %q", tt.num, tt.den, got, tt.want)
		}
	}
}

func TestSpendFoldsSmallSeriesIntoOther(t *testing.T) {
	q := Query{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)}
	var rows []store.UsageRow
	for i := 1; i <= 10; i++ { // project p1 spends 1 nano-USD, … p10 spends 10, on 11-02
		rows = append(rows, store.UsageRow{Day: "2026-11-02", Project: "p" + strconv.Itoa(i), Cost: money.Nanos(i)})
	}
	rows = append(rows, store.UsageRow{Day: "2026-10-31", Project: "p1", Cost: 1000}) // outside the range
	sp := spendView(q, "project", rows)
	var keys string
	for _, s := range sp.Series {
		keys += s.Key + "=" + strconv.FormatInt(int64(s.Total), 10) + " "
	}
	if want := "p10=10 p9=9 p8=8 p7=7 p6=6 p5=5 p4=4 other=6 "; keys != want || !sp.Series[7].Other {
		t.Errorf("series: %s, want %s", keys, want)
	}
	if sp.Total != 55 || sp.DayTotals[0] != 0 || sp.DayTotals[1] != 55 || sp.Series[7].Cost[1] != 6 {
		t.Errorf("totals: %+v", sp)
	}
}
