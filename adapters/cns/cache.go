package cns

import (
	"container/list"
	"sync"
)

// lru is a map bounded to max entries that forgets the least recently used
// one first. Its methods are safe for concurrent use.
type lru[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *lruItem[K, V], most recent first
	m   map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	k K
	v V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), m: map[K]*list.Element{}}
}

// get returns the value under k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).v, true
	}
	var zero V
	return zero, false
}

// put stores v under k, forgetting the least recently used entry beyond max.
func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		e.Value.(*lruItem[K, V]).v = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&lruItem[K, V]{k, v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*lruItem[K, V]).k)
	}
}

// removeIf forgets every entry for which drop is true.
func (c *lru[K, V]) removeIf(drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if it := e.Value.(*lruItem[K, V]); drop(it.v) {
			c.ll.Remove(e)
			delete(c.m, it.k)
		}
		e = next
	}
}

// keys lists the keys, most recently used first.
func (c *lru[K, V]) keys() []K {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]K, 0, c.ll.Len())
	for e := c.ll.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*lruItem[K, V]).k)
	}
	return out
}
