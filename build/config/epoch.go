package config

import (
	"fmt"
	"strconv"
	"time"
)

// SourceDateEpoch reads SOURCE_DATE_EPOCH; ok is false when it is not set.
func SourceDateEpoch(getenv func(string) string) (t time.Time, ok bool, err error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), true, nil
}
