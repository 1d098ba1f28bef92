import json,re,sys
seed0=open('../shared/seeds/000_540d5338120a05e5.txt').read().split('\n')
rows=[]
period={'A.9.2.5':'monthly','A.12.4.3':'monthly','A.12.3.1':'yearly','A.18.2.3':'yearly','A.9.1.1':'half-yearly'}
ev={'A.10.1.1':['settings','tls'],'A.12.1.2 (2)':['settings'],'A.12.3.1':['restore-test'],'A.12.4.1':['audit-verify'],
    'A.12.4.3':['admin-log-review'],'A.12.4.4':['clock'],'A.16.1.3':['incidents'],'A.9.2.5':['access-review'],'A.9.4.1':['settings'],
    'A.14.2.1':['tls']}
for i,l in enumerate(seed0):
    m=re.match(r'^A\. ?(\d+\.\d+\.\d+(?: \(\d\))?) (.*)$',l)
    if not m: continue
    ref='A.'+m.group(1); title=m.group(2).strip()
    text=''
    for l2 in seed0[i+1:]:
        l2=l2.strip().lstrip('•').strip()
        if l2 and l2 not in ('Toegangslog',):
            text=l2; break
    rows.append(dict(id='medmij/'+ref.replace(' ',''),framework='MedMij normenkader',ref=ref,title=title,text=text,period=period.get(ref,''),evidence=ev.get(ref,[])))
seed2=open('../shared/seeds/002_75aa1d38d0b152d1.txt').read().split('\n')
titles={'9.1.1':'Beleid voor toegangsbeveiliging','9.1.2':'Toegang tot netwerken en netwerkdiensten','9.2.1':'Registratie en afmelden van gebruikers',
 '9.2.2':'Gebruikers toegang verlenen','9.2.3':'Beheren van speciale toegangsrechten','9.2.4':'Beheer van geheime authenticatie-informatie van gebruikers',
 '9.2.5':'Beoordeling van toegangsrechten van gebruikers','9.2.6':'Toegangsrechten intrekken of aanpassen','9.3.1':'Geheime authenticatie-informatie gebruiken',
 '9.4.1':'Beperking toegang tot informatie','9.4.2':'Beveiligde inlogprocedures','9.4.3':'Systeem voor wachtwoordbeheer',
 '9.4.4':'Speciale systeemhulpmiddelen gebruiken','9.4.5':'Toegangsbeveiliging op programmabroncode'}
ev2={'9.2.3':['access-review','admin-log-review'],'9.2.5':['access-review'],'9.2.6':['access-review'],'9.4.2':['settings','tls'],'9.4.3':['settings'],'9.4.4':['admin-log-review']}
texts=[]
for i,l in enumerate(seed2):
    if l.strip()=='Beheersmaatregel':
        for l2 in seed2[i+1:]:
            if l2.strip(): texts.append(l2.strip()); break
assert len(texts)==14,len(texts)
for ref,text in zip(titles,texts):
    rows.append(dict(id='nen7510-2/'+ref,framework='NEN 7510-2:2017',ref=ref,title=titles[ref],text=text,period='monthly' if ref=='9.2.5' else '',evidence=ev2.get(ref,[])))
seed1=open('../shared/seeds/001_7d9b9967804ca9e6.txt').read().split('\n')
start=[i for i,l in enumerate(seed1) if re.match(r'^Tabel\s7',l)][0]
group=None; grouptitle=''
ev3={'6.3.1':['certificates'],'6.3.3.2':['certificates','settings'],'6.3.4 a':['tls'],'6.3.4 b':['tls','certificates'],'6.3.4 c':['tls'],'6.3.4 d':['tls'],
 '6.3.6 a':['audit-verify'],'6.3.6 b':['audit-verify'],'6.4.1':['incidents'],'6.4.3 b':['restore-test']}
lvl={4:'Laag',3:'Midden',2:'Hoog',1:'Zeer Hoog'}
def text7(aspect,rest):
    toks=rest.split()
    marks=[x for x in toks if x in ('x','a')]
    ref=[x for x in toks if re.match(r'^\d',x)]
    return 'Kwaliteitsaspect %s; normatief (x) vanaf zekerheidsniveau %s%s.'%(aspect,lvl[len(marks)],('; NEN 7510 '+ref[0]) if ref else '')
for l in seed1[start+3:]:
    m1=re.match(r'^(6\.\d+(?:\.\d+)*) (.+?) (BIV|BI|IV|I|V|B) +(.*)$',l)
    m2=re.match(r'^([a-d])\) (.+?) (BIV|BI|IV|I|V|B) +(.*)$',l)
    mh=re.match(r'^(6\.\d+(?:\.\d+)*) (.+?)\s*$',l)
    if m1 and 'x' in m1.group(4).split():
        ref=m1.group(1); group=ref; grouptitle=m1.group(2)
        rows.append(dict(id='nen7512/'+ref,framework='NEN 7512 Tabel 7',ref=ref,title=m1.group(2),text=text7(m1.group(3),m1.group(4)),period='',evidence=ev3.get(ref,[])))
    elif m2 and 'x' in m2.group(4).split() and group:
        ref=group+' '+m2.group(1)
        rows.append(dict(id='nen7512/'+group+m2.group(1),framework='NEN 7512 Tabel 7',ref=ref,title=grouptitle+': '+m2.group(2),text=text7(m2.group(3),m2.group(4)),period='',evidence=ev3.get(ref,[])))
    elif mh and not m1:
        group=mh.group(1); grouptitle=mh.group(2)
ids=[r['id'] for r in rows]
assert len(set(ids))==len(ids)
print(len(rows), sum(r['framework'].startswith('MedMij') for r in rows), sum(r['framework'].startswith('NEN 7510') for r in rows), sum(r['framework'].startswith('NEN 7512') for r in rows), file=sys.stderr)
json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
print()
