/* mjpeg-fcgi viewer page.
 *
 * The demo stream's card is in index.html, so it plays before this script
 * runs. This script adopts it, asks `status` for every stream and adds a card
 * per stream: at most MAX_LIVE play live in an <img>; the others show a
 * snapshot refreshed every SNAPSHOT_MS. Over HTTP/1.1 that is four (browsers
 * open only six connections per server, and a live stream holds one for as
 * long as it plays); over HTTP/2 or HTTP/3, where every request is a stream
 * of one connection, every stream plays live.
 *
 * Two views of the same cards: "cards" (picture, numbers, buttons) and
 * "wall" (only the pictures, sized so that all of them fit the window;
 * click one for full size). A stream whose source is scale:NAME is NAME's
 * scaled copy: the wall shows it in NAME's tile (and hides its own card),
 * and switches to NAME itself at full size.
 *
 * Every URL is relative, so the page works wherever it is mounted.
 * Before an <img> is dropped or re-pointed its src is set to "": otherwise
 * the browser keeps the stream's connection open.
 */
'use strict';

(function () {
	/* Streams played live at once: over HTTP/1.1, four of the browser's six
	 * connections per server (the rest carry status and snapshots); over
	 * HTTP/2 or 3, the streams one connection may carry (nginx allows 128,
	 * Apache 100), less room for status and snapshots. */
	const MAX_LIVE_HTTP1 = 4;
	const MAX_LIVE_MULTIPLEXED = 90;
	const MULTIPLEXED = multiplexedProtocol();
	const MAX_LIVE = MULTIPLEXED ? MAX_LIVE_MULTIPLEXED : MAX_LIVE_HTTP1;
	const WALL_ASPECT = 4 / 3;     /* the wall's tiles are laid out for 4:3 pictures */
	const WALL_MIN_TILE_PX = 160;  /* below this width a tile gets no narrower: the wall scrolls */
	const WALL_GAP_PX = 6;         /* .grid.wall gap in style.css */
	const WALL_LABEL_PX = 22;      /* a tile's name line above its picture */
	const VIEW_KEY = 'mjpeg-fcgi.view'; /* localStorage: the view chosen last */
	const STATUS_MS = 2000;        /* status poll period, ms */
	const STATUS_TIMEOUT_MS = 4000;
	const SNAPSHOT_MS = 2000;      /* thumbnail refresh and frame age period, ms */
	/* The reconnect policy; vue/MjpegStream.js has the same numbers (a test
	 * compares them). */
	const BACKOFF_MS = [500, 1000, 2000, 4000, 5000]; /* reconnect delays; the last repeats */
	const FPS_WINDOW_MS = 4000;    /* load events counted for the browser frame rate */
	const PER_PART_LOADS = 3;      /* this many loads on one connection: the browser reports parts */
	const WATCHDOG_MS = 5000;      /* no part for this long (server repeats every ~1 s): reconnect */
	const STALL_MS = 6000;         /* picture unchanged this long while snapshots differ: stalled */
	const STALL_CHECKS = 2;        /* ... in this many snapshot checks since it last changed */
	const SIG_SIZE = 8;            /* pictures are compared as 8x8 thumbnails */

	const grid = document.getElementById('streams');
	const banner = document.getElementById('status-banner');
	const addrEl = document.getElementById('client-addr');

	const cards = new Map();       /* stream name -> card state, in page order */
	const thumbOf = new Map();     /* stream name -> the stream that is its scaled copy */
	const thumbNames = new Set();  /* the streams that are another's scaled copy */
	let view = 'cards';            /* 'cards' or 'wall' */
	let serverDown = false;        /* the last status request failed */
	let lastUptime = null;         /* uptime_sec of the last status answer */

	/* Chromium fires no event at all when a multipart <img>'s stream ends or
	 * is cut: the picture just stops. A stalled picture is found by comparing
	 * it (drawn small on a canvas: the newest part received) with the newest
	 * snapshot. Same origin, so the canvas is readable. */
	const sigCanvas = document.createElement('canvas');
	sigCanvas.width = sigCanvas.height = SIG_SIZE;
	const sigCtx = sigCanvas.getContext('2d', { willReadFrequently: true });

	/* True when this page came over HTTP/2 or HTTP/3: one connection carries
	 * every request, and no per-server connection limit applies. */
	function multiplexedProtocol() {
		const nav = performance.getEntriesByType ? performance.getEntriesByType('navigation')[0] : null;
		const proto = nav && nav.nextHopProtocol;
		return proto === 'h2' || proto === 'h3';
	}

	function streamUrl(name, bust) {
		return 'stream/' + encodeURIComponent(name) + (bust ? '?_=' + Date.now() : '');
	}

	function snapshotUrl(name) {
		return 'snapshot/' + encodeURIComponent(name);
	}

	function el(tag, cls, text) {
		const e = document.createElement(tag);
		if (cls)
			e.className = cls;
		if (text !== undefined)
			e.textContent = text;
		return e;
	}

	/* Stops an <img>'s download (a stream's connection) and detaches it. */
	function releaseImg(img) {
		if (!img)
			return;
		img.src = '';
		img.remove();
	}

	/* ---- cards ---- */

	function newCardState(name, root) {
		return {
			name: name,
			root: root,
			frame: root.querySelector('.frame'),
			stateEl: root.querySelector('.state'),
			badge: root.querySelector('.badge'),
			geomEl: root.querySelector('.geometry'),
			fpsEl: root.querySelector('.fps'),
			delayEl: root.querySelector('.delay'),
			viewersEl: root.querySelector('.viewers'),
			actions: root.querySelector('.actions'),
			info: null,          /* this stream's entry of the last status answer */
			src: name,           /* the stream shown: this one, or its scaled copy on the wall */
			full: false,         /* shown at full size (full screen or zoomed) */
			mode: null,          /* 'live' or 'thumb' */
			img: null,           /* the <img> currently shown (live stream or thumbnail) */
			liveSince: 0,        /* when it went live: the oldest gives way to "watch live" */
			attempt: 0,          /* reconnect attempts since the last frame */
			retryTimer: null,
			loads: [],           /* performance.now() of recent load events */
			connLoads: 0,        /* load events on the current connection */
			lastLoad: 0,
			thumbUrl: null,      /* object URL of the thumbnail blob */
			snapTimer: null,
			lastAge: null,       /* {sec, from} newest frame age */
			imgSig: null,        /* small copy of the live picture ... */
			imgChanged: 0,       /* ... and when it last changed (performance.now()) */
			stallHits: 0,        /* snapshot checks that differed since the picture last changed */
		};
	}

	/* Fills in whatever part of a card the static HTML did not provide. */
	function completeCard(root, name) {
		let head = root.querySelector('.card-head');
		if (!head) {
			head = el('header', 'card-head');
			head.append(el('h2', 'name', name), el('span', 'geometry', ''));
			root.prepend(head);
		}
		let frame = root.querySelector('.frame');
		if (!frame) {
			frame = el('div', 'frame');
			head.after(frame);
		}
		if (!frame.querySelector('.state')) {
			const st = el('span', 'state');
			st.setAttribute('aria-live', 'polite');
			frame.append(st);
		}
		if (!frame.querySelector('.badge'))
			frame.append(el('span', 'badge'));
		let stats = root.querySelector('.stats');
		if (!stats) {
			stats = el('dl', 'stats');
			frame.after(stats);
		}
		for (const [cls, label] of [['fps', 'Frame rate'], ['delay', 'Newest frame age'],
		                            ['viewers', 'Viewers (all clients)']]) {
			if (!stats.querySelector('.' + cls))
				stats.append(el('dt', '', label), el('dd', cls, '–'));
		}
		let actions = root.querySelector('.actions');
		if (!actions) {
			actions = el('div', 'actions');
			stats.after(actions);
		}
		if (!actions.querySelector('.snapshot')) {
			const b = el('button', 'snapshot', 'Snapshot');
			b.type = 'button';
			actions.prepend(b);
		}
		if (!actions.querySelector('.watch-live')) {
			const b = el('button', 'watch-live', 'Watch live');
			b.type = 'button';
			b.hidden = true;
			actions.append(b);
		}
	}

	function createCard(name) {
		const root = el('article', 'card');
		root.id = 'card-' + name;
		root.dataset.stream = name;
		completeCard(root, name);
		const card = newCardState(name, root);
		wireCard(card);
		return card;
	}

	/* The demo card from index.html, with its <img> already streaming. */
	function adoptStaticCard(root) {
		const name = root.dataset.stream;
		completeCard(root, name);
		const card = newCardState(name, root);
		wireCard(card);
		card.img = root.querySelector('img.stream');
		card.mode = 'live';
		card.liveSince = performance.now();
		resetStall(card);
		attachLiveImg(card, card.img);
		setBadge(card);
		setButtons(card);
		/* It may have failed before this script ran. */
		if (card.img.complete && card.img.naturalWidth === 0)
			scheduleReconnect(card);
		return card;
	}

	function wireCard(card) {
		card.actions.querySelector('.snapshot').addEventListener('click', () => downloadSnapshot(card));
		card.actions.querySelector('.watch-live').addEventListener('click', () => watchLive(card));
		card.frame.addEventListener('click', (ev) => {
			if (ev.target.tagName !== 'IMG' && !card.frame.classList.contains('zoomed'))
				return;
			/* a snapshot tile of the wall plays live at full size (over
			 * HTTP/1.1 the live stream shown longest gives way) */
			if (view === 'wall' && card.mode === 'thumb' && !card.full) {
				card.full = true;
				card.src = wantedSource(card);
				watchLive(card);
			}
			toggleFullscreen(card);
		});
		scheduleSnapshot(card, 200 + Math.random() * 800);
	}

	function removeCard(card) {
		clearTimeout(card.retryTimer);
		clearTimeout(card.snapTimer);
		card.snapTimer = null;
		card.removed = true;
		releaseImg(card.img);
		card.img = null;
		if (card.thumbUrl)
			URL.revokeObjectURL(card.thumbUrl);
		card.root.remove();
		cards.delete(card.name);
	}

	function setBadge(card) {
		card.badge.textContent = card.mode === 'live' ? 'live' : 'snapshot every ' + SNAPSHOT_MS / 1000 + ' s';
		card.badge.classList.toggle('is-live', card.mode === 'live');
	}

	function setButtons(card) {
		card.actions.querySelector('.watch-live').hidden = card.mode === 'live';
		card.root.classList.toggle('live', card.mode === 'live');
		card.root.classList.toggle('thumb', card.mode === 'thumb');
	}

	function setGeometry(card, img) {
		const info = card.info;
		if (!info || !img)
			return;
		if (img.getAttribute('width') !== String(info.width))
			img.setAttribute('width', info.width);
		if (img.getAttribute('height') !== String(info.height))
			img.setAttribute('height', info.height);
	}

	function setState(card, state, text) {
		card.root.classList.remove('reconnecting', 'paused', 'stale');
		if (state)
			card.root.classList.add(state);
		card.stateEl.textContent = state ? text : '';
		card.stateEl.title = '';
	}

	/* ---- live mode ---- */

	function liveCards() {
		return [...cards.values()].filter((c) => c.mode === 'live');
	}

	function goLive(card) {
		if (card.mode === 'live')
			return;
		releaseImg(card.img);
		if (card.thumbUrl) {
			URL.revokeObjectURL(card.thumbUrl);
			card.thumbUrl = null;
		}
		const img = el('img', 'stream');
		img.id = 'stream-' + card.name;
		img.alt = 'live stream ' + card.name;
		card.img = img;
		card.mode = 'live';
		card.liveSince = performance.now();
		card.attempt = 0;
		card.loads = [];
		card.connLoads = 0;
		resetStall(card);
		setGeometry(card, img);
		attachLiveImg(card, img);
		setState(card, null);
		card.frame.prepend(img);
		img.src = streamUrl(card.src, true);
		setBadge(card);
		setButtons(card);
	}

	function goThumb(card) {
		if (card.mode === 'thumb')
			return;
		clearTimeout(card.retryTimer);
		card.retryTimer = null;
		releaseImg(card.img);
		const img = el('img', 'thumb');
		img.id = 'thumb-' + card.name;
		img.alt = 'snapshot of stream ' + card.name;
		card.img = img;
		card.mode = 'thumb';
		card.loads = [];
		setGeometry(card, img);
		setState(card, null);
		card.frame.prepend(img);
		setBadge(card);
		setButtons(card);
		scheduleSnapshot(card, 0);
	}

	function watchLive(card) {
		const live = liveCards();
		if (live.length >= MAX_LIVE) {
			live.sort((a, b) => a.liveSince - b.liveSince);
			goThumb(live[0]);
		}
		goLive(card);
	}

	function attachLiveImg(card, img) {
		img.addEventListener('load', () => {
			if (img !== card.img || card.mode !== 'live')
				return;
			const now = performance.now();
			card.loads.push(now);
			card.connLoads++;
			card.lastLoad = now;
			card.attempt = 0;
			if (card.root.classList.contains('reconnecting'))
				setState(card, null);
		});
		img.addEventListener('error', () => {
			/* src="" (set on purpose) fires error too */
			if (img !== card.img || card.mode !== 'live' || !img.getAttribute('src'))
				return;
			scheduleReconnect(card);
		});
	}

	/* Drops the current connection and opens a new one after the back-off. */
	function scheduleReconnect(card, delayMs) {
		if (card.mode !== 'live' || card.retryTimer)
			return;
		const delay = delayMs !== undefined ? delayMs
			: BACKOFF_MS[Math.min(card.attempt, BACKOFF_MS.length - 1)];
		card.attempt++;
		card.img.src = '';
		card.connLoads = 0;
		setState(card, 'reconnecting', 'reconnecting…');
		card.stateEl.title = 'next attempt in ' + (delay / 1000) + ' s';
		card.retryTimer = setTimeout(() => {
			card.retryTimer = null;
			if (card.mode !== 'live' || card.removed || document.hidden)
				return;
			card.connLoads = 0;
			resetStall(card);
			card.img.src = streamUrl(card.src, true);
		}, delay);
	}

	/* Reconnects now, forgetting the back-off (status answers again). */
	function reconnectNow(card) {
		if (card.mode !== 'live')
			return;
		clearTimeout(card.retryTimer);
		card.retryTimer = null;
		card.attempt = 0;
		scheduleReconnect(card, 0);
	}

	/* ---- frame rate, watchdogs ---- */

	function signature(source) {
		try {
			sigCtx.clearRect(0, 0, SIG_SIZE, SIG_SIZE);
			sigCtx.drawImage(source, 0, 0, SIG_SIZE, SIG_SIZE);
			return sigCtx.getImageData(0, 0, SIG_SIZE, SIG_SIZE).data.slice();
		} catch (e) {
			return null;
		}
	}

	/* mean difference per colour channel above 8 of 255: another picture
	 * (small decoder and scaling differences stay well below) */
	function differs(a, b) {
		if (!a || !b)
			return false;
		let sum = 0;
		for (let i = 0; i < a.length; i += 4)
			sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
		return sum / (a.length / 4 * 3) > 8;
	}

	function resetStall(card) {
		card.imgSig = null;
		card.imgChanged = performance.now();
		card.stallHits = 0;
	}

	/* Notes when the live picture last changed. */
	function sampleLive(card) {
		const img = card.img;
		if (card.mode !== 'live' || !img.getAttribute('src') || !img.complete || img.naturalWidth === 0)
			return;
		const sig = signature(img);
		if (sig && (!card.imgSig || differs(sig, card.imgSig))) {
			card.imgSig = sig;
			card.imgChanged = performance.now();
			card.stallHits = 0;
		}
	}

	/* Called with each new snapshot of a live stream. */
	async function checkStall(card, blob) {
		if (card.mode !== 'live' || card.retryTimer || typeof createImageBitmap !== 'function')
			return;
		let snapSig = null;
		try {
			const bitmap = await createImageBitmap(blob);
			snapSig = signature(bitmap);
			bitmap.close();
		} catch (e) {
			return;
		}
		if (card.mode !== 'live' || card.retryTimer)
			return;
		sampleLive(card);
		if (differs(snapSig, card.imgSig))
			card.stallHits++;
		if (card.stallHits >= STALL_CHECKS && performance.now() - card.imgChanged > STALL_MS)
			scheduleReconnect(card);
	}

	function fmtFps(v) {
		return (Math.round(v * 10) / 10) + ' fps';
	}

	function tick() {
		const now = performance.now();
		for (const card of cards.values()) {
			card.loads = card.loads.filter((t) => now - t <= FPS_WINDOW_MS);
			const n = card.loads.length;
			let text;
			if (card.mode === 'live' && n >= PER_PART_LOADS && now - card.loads[n - 1] < 2500) {
				const span = (card.loads[n - 1] - card.loads[0]) / 1000;
				text = fmtFps((n - 1) / span) + ' (browser)';
				card.fpsEl.title = 'load events of this <img> per second, re-sent frames included';
			} else if (card.info) {
				text = fmtFps(card.info.fps) + ' (server)';
				card.fpsEl.title = 'the stream\'s configured rate from status; ' +
					(card.mode === 'live' ? 'this browser does not report each part of a stream'
						: 'this card shows snapshots');
			} else {
				text = '–';
			}
			card.fpsEl.textContent = text;

			if (card.mode === 'live' && !card.retryTimer) {
				sampleLive(card);
				/* first part arrived; where load did not say so */
				if (card.root.classList.contains('reconnecting') && card.img.getAttribute('src') &&
				    card.img.complete && card.img.naturalWidth > 0) {
					card.attempt = 0;
					setState(card, null);
				}
			}

			/* Only where the browser reports each part: a silent stream is a dead one. */
			if (card.mode === 'live' && !card.retryTimer && !document.hidden &&
			    card.connLoads >= PER_PART_LOADS && now - card.lastLoad > WATCHDOG_MS)
				scheduleReconnect(card);
		}
	}

	/* ---- snapshots: thumbnails, frame age, download ---- */

	function parseTimestamp(res) {
		const v = parseFloat(res.headers.get('X-Timestamp'));
		return Number.isFinite(v) ? v : null;
	}

	function showAge(card) {
		const a = card.lastAge;
		if (!a) {
			card.delayEl.textContent = '–';
			return;
		}
		card.delayEl.textContent = Math.round(a.sec * 1000) + ' ms (' + a.from + ')';
		card.delayEl.title = a.from === 'snapshot'
			? 'this computer\'s clock minus X-Timestamp of snapshot/' + card.name +
			  ' (publish time of the newest frame), at ' + new Date().toLocaleTimeString()
			: 'this computer\'s clock minus last_publish from status';
	}

	function scheduleSnapshot(card, delayMs) {
		clearTimeout(card.snapTimer);
		card.snapTimer = setTimeout(() => refreshSnapshot(card), delayMs);
	}

	async function refreshSnapshot(card) {
		card.snapTimer = null;
		if (card.removed)
			return;
		if (document.hidden || serverDown || card.root.hidden) {
			scheduleSnapshot(card, SNAPSHOT_MS);
			return;
		}
		const mode = card.mode;
		try {
			const res = await fetch(snapshotUrl(card.src), { cache: 'no-store' });
			const received = Date.now() / 1000;
			if (!res.ok)
				throw new Error('HTTP ' + res.status);
			const ts = parseTimestamp(res);
			const blob = await res.blob();
			if (ts !== null)
				card.lastAge = { sec: received - ts, from: 'snapshot' };
			showAge(card);
			if (mode === 'thumb' && card.mode === 'thumb' && !card.removed)
				showThumb(card, blob);
			else if (mode === 'live')
				await checkStall(card, blob);
			if (card.mode === 'thumb')
				setState(card, null);
		} catch (e) {
			if (card.mode === 'thumb' && !card.removed)
				setState(card, 'stale', 'snapshot failed, retrying…');
		}
		/* jittered, so a periodic stream (demo: red, blue) is not always caught in one phase */
		if (!card.removed)
			scheduleSnapshot(card, SNAPSHOT_MS * (0.75 + Math.random() * 0.5));
	}

	function showThumb(card, blob) {
		const url = URL.createObjectURL(blob);
		const old = card.thumbUrl;
		card.thumbUrl = url;
		card.img.src = url;
		if (old)
			card.img.decode().catch(() => {}).finally(() => URL.revokeObjectURL(old));
	}

	function fileStamp(sec) {
		/* 20260101T120000.123Z: sortable, no ':' (not allowed in Windows file names) */
		return new Date(sec * 1000).toISOString().replace(/[-:]/g, '');
	}

	async function downloadSnapshot(card) {
		const button = card.actions.querySelector('.snapshot');
		button.disabled = true;
		try {
			const res = await fetch(snapshotUrl(card.name), { cache: 'no-store' });
			if (!res.ok)
				throw new Error('HTTP ' + res.status);
			const ts = parseTimestamp(res);
			const blob = await res.blob();
			const url = URL.createObjectURL(blob);
			const a = el('a');
			a.href = url;
			a.download = card.name + '-' + fileStamp(ts !== null ? ts : Date.now() / 1000) + '.jpg';
			document.body.append(a);
			a.click();
			a.remove();
			setTimeout(() => URL.revokeObjectURL(url), 10000);
			button.title = 'saved ' + a.download;
		} catch (e) {
			button.title = 'snapshot failed: ' + e.message;
			button.classList.add('failed');
			setTimeout(() => button.classList.remove('failed'), 2000);
		} finally {
			button.disabled = false;
		}
	}

	/* ---- full screen ---- */

	function toggleFullscreen(card) {
		const frame = card.frame;
		if (document.fullscreenElement || document.webkitFullscreenElement) {
			(document.exitFullscreen || document.webkitExitFullscreen).call(document);
			return;
		}
		if (frame.classList.contains('zoomed')) {
			frame.classList.remove('zoomed');
			setFull(card, false);
			return;
		}
		setFull(card, true);
		const request = frame.requestFullscreen || frame.webkitRequestFullscreen;
		if (request) {
			const p = request.call(frame);
			if (p && p.catch)
				p.catch(() => frame.classList.add('zoomed'));
		} else {
			/* no element full screen (iPhone): fill the window instead */
			frame.classList.add('zoomed');
		}
	}

	/* At full size the wall shows the stream itself, not its scaled copy. */
	function setFull(card, on) {
		card.full = on;
		applySource(card);
	}

	/* The cards at full size that no longer are: full screen ended, or the
	 * zoom was taken off. */
	function endFull() {
		const fs = document.fullscreenElement || document.webkitFullscreenElement;
		for (const card of cards.values())
			if (card.full && fs !== card.frame && !card.frame.classList.contains('zoomed'))
				setFull(card, false);
	}

	document.addEventListener('fullscreenchange', endFull);
	document.addEventListener('webkitfullscreenchange', endFull);

	document.addEventListener('keydown', (ev) => {
		if (ev.key === 'Escape') {
			for (const z of document.querySelectorAll('.frame.zoomed'))
				z.classList.remove('zoomed');
			endFull();
		}
	});

	/* ---- views: cards and wall ---- */

	/* The stream a card shows: on the wall (not at full size) its scaled
	 * copy if it has one, else itself. */
	function wantedSource(card) {
		if (view === 'wall' && !card.full && thumbOf.has(card.name))
			return thumbOf.get(card.name);
		return card.name;
	}

	function applySource(card) {
		const want = wantedSource(card);
		if (want === card.src)
			return;
		card.src = want;
		if (card.mode === 'live')
			reconnectNow(card);
		else if (card.mode === 'thumb')
			scheduleSnapshot(card, 0);
	}

	/* A scaled copy has no tile of its own on the wall: it is shown in its
	 * source's. */
	function hiddenInView(card) {
		return view === 'wall' && thumbNames.has(card.name);
	}

	/* Hides what the view hides (a hidden card stops playing), points every
	 * card at the stream the view wants, and fills free live places with
	 * visible cards that show snapshots. */
	function rebalance() {
		for (const card of cards.values()) {
			const hidden = hiddenInView(card);
			card.root.hidden = hidden;
			if (hidden && card.mode === 'live')
				goThumb(card);
			applySource(card);
		}
		for (const card of cards.values()) {
			if (liveCards().length >= MAX_LIVE)
				break;
			if (card.mode === 'thumb' && !card.root.hidden)
				goLive(card);
		}
		layoutWall();
	}

	/* The number of columns with which every tile fits the window (below
	 * the page's head) at the largest size, but no tile narrower than
	 * WALL_MIN_TILE_PX. */
	function layoutWall() {
		if (view !== 'wall') {
			grid.style.removeProperty('--wall-columns');
			grid.style.removeProperty('--wall-tile');
			return;
		}
		const n = Math.max(1, [...cards.values()].filter((c) => !c.root.hidden).length);
		const width = grid.clientWidth;
		const top = grid.getBoundingClientRect().top + window.scrollY;
		const height = Math.max(200, window.innerHeight - top - 8);
		let best = 1;
		let bestTile = 0;
		for (let cols = 1; cols <= n; cols++) {
			const rows = Math.ceil(n / cols);
			const tile = Math.min((width - (cols - 1) * WALL_GAP_PX) / cols,
				((height - (rows - 1) * WALL_GAP_PX) / rows - WALL_LABEL_PX) * WALL_ASPECT);
			if (tile > bestTile) {
				bestTile = tile;
				best = cols;
			}
		}
		const widest = Math.max(1, Math.floor((width + WALL_GAP_PX) / (WALL_MIN_TILE_PX + WALL_GAP_PX)));
		grid.style.setProperty('--wall-columns', String(Math.min(best, widest)));
		grid.style.setProperty('--wall-tile', Math.floor(Math.max(bestTile, WALL_MIN_TILE_PX)) + 'px');
	}

	function setView(v) {
		view = v === 'wall' ? 'wall' : 'cards';
		grid.classList.toggle('wall', view === 'wall');
		document.body.classList.toggle('wall-view', view === 'wall');
		for (const b of viewsNav.querySelectorAll('button[data-view]'))
			b.setAttribute('aria-pressed', String(b.dataset.view === view));
		try {
			localStorage.setItem(VIEW_KEY, view);
		} catch (e) {
			/* private mode: the choice lasts as long as the page */
		}
		const hash = view === 'wall' ? '#wall' : '';
		if (location.hash !== hash && (hash || location.hash === '#cards' || location.hash === '#wall'))
			history.replaceState(null, '', location.pathname + location.search + hash);
		rebalance();
	}

	/* #wall or #cards in the address wins, then the last choice here. */
	function initialView() {
		if (location.hash === '#wall' || location.hash === '#cards')
			return location.hash.slice(1);
		try {
			return localStorage.getItem(VIEW_KEY) || 'cards';
		} catch (e) {
			return 'cards';
		}
	}

	window.addEventListener('resize', layoutWall);
	window.addEventListener('hashchange', () => {
		if (location.hash === '#wall' || location.hash === '#cards')
			setView(location.hash.slice(1));
	});

	/* ---- status ---- */

	function setServerDown(down) {
		banner.hidden = !down;
		document.body.classList.toggle('server-down', down);
		if (serverDown && !down) {
			/* Back again: every live stream most likely broke meanwhile, and an
			 * <img> whose stream ended cleanly fires no error. */
			for (const card of cards.values())
				reconnectNow(card);
		}
		serverDown = down;
	}

	function applyStatus(st) {
		if (typeof st.client_addr === 'string')
			addrEl.textContent = st.client_addr;
		const restarted = lastUptime !== null && typeof st.uptime_sec === 'number' &&
			st.uptime_sec + 1 < lastUptime;
		lastUptime = typeof st.uptime_sec === 'number' ? st.uptime_sec : null;

		const streams = Array.isArray(st.streams) ? st.streams : [];
		const names = new Set(streams.map((s) => s.name));
		learnThumbnails(streams, names);
		for (const card of [...cards.values()])
			if (!names.has(card.name))
				removeCard(card);

		for (const info of streams) {
			let card = cards.get(info.name);
			if (!card) {
				card = createCard(info.name);
				cards.set(info.name, card);
				grid.append(card.root);
				card.info = info;
				card.src = wantedSource(card);
				card.root.hidden = hiddenInView(card);
				if (liveCards().length < MAX_LIVE && !card.root.hidden)
					goLive(card);
				else
					goThumb(card);
			}
			card.info = info;
			card.geomEl.textContent = info.width + '×' + info.height;
			card.geomEl.title = 'source ' + info.source + ', ' + info.fps + ' fps';
			card.viewersEl.textContent = String(info.viewers);
			setGeometry(card, card.img);
			if (!card.lastAge || card.lastAge.from !== 'snapshot') {
				if (typeof info.last_publish === 'number' && info.last_publish > 0) {
					card.lastAge = { sec: Date.now() / 1000 - info.last_publish, from: 'status' };
					showAge(card);
				}
			}
			if (restarted)
				reconnectNow(card);
		}
		rebalance();
	}

	/* A stream whose source is scale:NAME, NAME being another stream, is
	 * NAME's scaled copy (the first such one, in status order). */
	function learnThumbnails(streams, names) {
		thumbOf.clear();
		thumbNames.clear();
		for (const info of streams) {
			const m = typeof info.source === 'string' ? /^scale:(.+)$/.exec(info.source) : null;
			if (!m || !names.has(m[1]) || m[1] === info.name || thumbOf.has(m[1]))
				continue;
			thumbOf.set(m[1], info.name);
			thumbNames.add(info.name);
		}
	}

	async function pollStatus() {
		if (!document.hidden) {
			const ctl = new AbortController();
			const timer = setTimeout(() => ctl.abort(), STATUS_TIMEOUT_MS);
			try {
				const res = await fetch('status', { cache: 'no-store', signal: ctl.signal });
				if (!res.ok)
					throw new Error('HTTP ' + res.status);
				const st = await res.json();
				setServerDown(false);
				applyStatus(st);
			} catch (e) {
				setServerDown(true);
			} finally {
				clearTimeout(timer);
			}
		}
		setTimeout(pollStatus, STATUS_MS);
	}

	/* ---- page visibility ---- */

	/* A hidden tab closes its streams, and opens them again when shown. */
	document.addEventListener('visibilitychange', () => {
		for (const card of cards.values()) {
			if (card.mode !== 'live')
				continue;
			if (document.hidden) {
				clearTimeout(card.retryTimer);
				card.retryTimer = null;
				card.img.src = '';
				setState(card, 'paused', 'paused while the page is hidden');
			} else {
				reconnectNow(card);
			}
		}
	});

	window.addEventListener('pagehide', () => {
		for (const card of cards.values())
			if (card.mode === 'live') {
				clearTimeout(card.retryTimer);
				card.retryTimer = null;
				card.img.src = '';
			}
	});

	/* back from the back/forward cache: the streams were closed by pagehide */
	window.addEventListener('pageshow', (ev) => {
		if (ev.persisted)
			for (const card of cards.values())
				reconnectNow(card);
	});

	/* ---- start ---- */

	const viewsNav = document.getElementById('views');
	for (const b of viewsNav.querySelectorAll('button[data-view]'))
		b.addEventListener('click', () => setView(b.dataset.view));
	viewsNav.hidden = false;
	document.getElementById('live-note').textContent = MULTIPLEXED
		? 'every stream live (HTTP/2)'
		: 'at most ' + MAX_LIVE + ' streams live (HTTP/1.1); the others as snapshots';
	document.body.classList.toggle('multiplexed', MULTIPLEXED);

	for (const root of grid.querySelectorAll('.card[data-stream]')) {
		const card = adoptStaticCard(root);
		cards.set(card.name, card);
	}
	setView(initialView());
	setInterval(tick, 1000);
	tick();
	pollStatus();
})();
