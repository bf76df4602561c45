#!/usr/bin/env python3
"""The product brief's streaming Python, ported faithfully to run without Redis, as the
reference the C++ updater is measured against (tests/bench/stream_bench.cpp runs it).

Per event, exactly what the brief does:
  * StreamingFeatureProcessor.process_event: session get-or-create with the 30-minute
    timeout, the view/click/purchase/search handlers, _compute_features (counts, CTR,
    average price, top category, last 10 clicks, the decayed session embedding of the
    last 20 clicks). The brief then json.dumps the features into Redis; --store does the
    json.dumps into a dict (off by default, which only makes the reference faster).
  * OnlineMatrixFactorization.update (k factors, lazy random init, decayed learning rate,
    user/item factor and bias SGD) on every event that names an item, label 1.0.
Input: the same NDJSON file (json.loads per line, as a consumer would). Prints one JSON
line: {"events": N, "seconds": S, "events_per_s": R}.
"""
import argparse
import json
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np


class OnlineMatrixFactorization:
    def __init__(self, n_factors=64, learning_rate=0.01, regularization=0.01, lr_decay=0.999, min_lr=0.0001):
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.base_lr = learning_rate
        self.regularization = regularization
        self.lr_decay = lr_decay
        self.min_lr = min_lr
        self.user_factors = {}
        self.item_factors = {}
        self.user_biases = {}
        self.item_biases = {}
        self.global_bias = 0.0
        self.update_count = 0

    def _get_or_init_user(self, user_id):
        if user_id not in self.user_factors:
            self.user_factors[user_id] = np.random.randn(self.n_factors) * 0.01
            self.user_biases[user_id] = 0.0
        return self.user_factors[user_id]

    def _get_or_init_item(self, item_id):
        if item_id not in self.item_factors:
            self.item_factors[item_id] = np.random.randn(self.n_factors) * 0.01
            self.item_biases[item_id] = 0.0
        return self.item_factors[item_id]

    def predict(self, user_id, item_id):
        user_vec = self._get_or_init_user(user_id)
        item_vec = self._get_or_init_item(item_id)
        return (self.global_bias + self.user_biases.get(user_id, 0.0) + self.item_biases.get(item_id, 0.0)
                + np.dot(user_vec, item_vec))

    def update(self, user_id, item_id, label):
        user_vec = self._get_or_init_user(user_id)
        item_vec = self._get_or_init_item(item_id)
        prediction = self.predict(user_id, item_id)
        error = label - prediction
        current_lr = max(self.base_lr * (self.lr_decay ** self.update_count), self.min_lr)
        user_update = current_lr * (error * item_vec - self.regularization * user_vec)
        self.user_factors[user_id] = user_vec + user_update
        item_update = current_lr * (error * user_vec - self.regularization * item_vec)
        self.item_factors[item_id] = item_vec + item_update
        self.user_biases[user_id] += current_lr * (error - self.regularization * self.user_biases[user_id])
        self.item_biases[item_id] += current_lr * (error - self.regularization * self.item_biases[item_id])
        self.update_count += 1


class StreamingFeatureProcessor:
    def __init__(self, item_embeddings, session_timeout_minutes=30, store=False):
        self.item_embeddings = item_embeddings
        self.session_timeout = timedelta(minutes=session_timeout_minutes)
        self.session_state = defaultdict(dict)
        self.store = {} if store else None
        self.dim = len(next(iter(item_embeddings.values()))) if item_embeddings else 128

    def process_event(self, user_id, event_type, item_id, timestamp, properties):
        session = self._get_or_create_session(user_id, timestamp)
        if event_type == 'view':
            self._handle_view(session, item_id, timestamp, properties)
        elif event_type == 'click':
            self._handle_click(session, item_id, timestamp)
        elif event_type == 'purchase':
            self._handle_purchase(session, item_id, timestamp)
        elif event_type == 'search':
            self._handle_search(session, timestamp, properties)
        features = self._compute_features(session)
        if self.store is not None:
            self.store[f"rt_features:{user_id}"] = json.dumps(features)
        return features

    def _get_or_create_session(self, user_id, timestamp):
        session = self.session_state.get(user_id)
        if session is None or self._is_session_expired(session, timestamp):
            session = {'start_time': timestamp, 'last_event_time': timestamp, 'viewed_items': [],
                       'clicked_items': [], 'purchased_items': [], 'search_queries': [],
                       'categories_viewed': defaultdict(int), 'price_sum': 0.0, 'price_count': 0}
            self.session_state[user_id] = session
        else:
            session['last_event_time'] = timestamp
        return session

    def _is_session_expired(self, session, current_time):
        return current_time - session['last_event_time'] > self.session_timeout

    def _handle_view(self, session, item_id, timestamp, properties):
        if item_id:
            session['viewed_items'].append({'item_id': item_id, 'timestamp': timestamp})
            category = properties.get('category')
            if category:
                session['categories_viewed'][category] += 1
            price = properties.get('price')
            if price:
                session['price_sum'] += price
                session['price_count'] += 1

    def _handle_click(self, session, item_id, timestamp):
        if item_id:
            session['clicked_items'].append({'item_id': item_id, 'timestamp': timestamp})

    def _handle_purchase(self, session, item_id, timestamp):
        if item_id:
            session['purchased_items'].append({'item_id': item_id, 'timestamp': timestamp})

    def _handle_search(self, session, timestamp, properties):
        query = properties.get('query')
        if query:
            session['search_queries'].append({'query': query, 'timestamp': timestamp})

    def _compute_features(self, session):
        features = {}
        features['session_view_count'] = len(session['viewed_items'])
        features['session_click_count'] = len(session['clicked_items'])
        features['session_purchase_count'] = len(session['purchased_items'])
        features['session_search_count'] = len(session['search_queries'])
        if session['viewed_items']:
            features['session_ctr'] = len(session['clicked_items']) / len(session['viewed_items'])
        else:
            features['session_ctr'] = 0.0
        if session['price_count'] > 0:
            features['avg_price_viewed'] = session['price_sum'] / session['price_count']
        else:
            features['avg_price_viewed'] = 0.0
        if session['categories_viewed']:
            sorted_cats = sorted(session['categories_viewed'].items(), key=lambda x: x[1], reverse=True)
            features['top_category'] = sorted_cats[0][0]
            features['category_count'] = len(session['categories_viewed'])
        else:
            features['top_category'] = None
            features['category_count'] = 0
        features['recent_clicked_items'] = [item['item_id'] for item in session['clicked_items'][-10:]]
        features['session_embedding'] = self._compute_session_embedding(session).tolist()
        return features

    def _compute_session_embedding(self, session, decay_factor=0.9):
        clicked_items = session['clicked_items']
        if not clicked_items:
            return np.zeros(self.dim)
        embeddings = []
        weights = []
        for i, item in enumerate(reversed(clicked_items[-20:])):
            item_id = item['item_id']
            if item_id in self.item_embeddings:
                embeddings.append(self.item_embeddings[item_id])
                weights.append(decay_factor ** i)
        if not embeddings:
            return np.zeros(self.dim)
        embeddings = np.array(embeddings)
        weights = np.array(weights) / sum(weights)
        return np.average(embeddings, axis=0, weights=weights)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--path', required=True, help='NDJSON events (the bench file)')
    ap.add_argument('--events', type=int, default=100000, help='events read from the start of the file')
    ap.add_argument('--k', type=int, default=64, help='factors')
    ap.add_argument('--items', type=int, default=100000, help='item embeddings i0..i<items-1> for the session embedding')
    ap.add_argument('--store', action='store_true', help="also json.dumps the features as the brief's Redis write does")
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()

    np.random.seed(args.seed)
    emb = np.random.randn(args.items, args.k) * 0.1
    item_embeddings = {f"i{i}": emb[i] for i in range(args.items)}
    with open(args.path, 'r') as f:
        lines = [next(f) for _ in range(args.events)]

    model = OnlineMatrixFactorization(n_factors=args.k)
    proc = StreamingFeatureProcessor(item_embeddings, store=args.store)
    start = time.perf_counter()
    n = 0
    for line in lines:
        e = json.loads(line)
        ts = datetime.fromtimestamp(e['timestamp'], tz=timezone.utc)
        item_id = e.get('item_id')
        proc.process_event(e['user_id'], e['event_type'], item_id, ts, e.get('properties', {}))
        if item_id:
            model.update(e['user_id'], item_id, 1.0)
        n += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"events": n, "seconds": seconds, "events_per_s": n / seconds}))


if __name__ == '__main__':
    main()
